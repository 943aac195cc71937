"""The LTX-2 family (families/ltx2/) against diffusers' LTX-2 pipelines called as their docs show
(``docs/source/en/api/pipelines/ltx2.md``), on tiny random-weight models of each architecture's real classes (fp32,
CPU): one pass, the two-stage pipeline (stage 1, ``LTX2LatentUpsamplePipeline``, stage 2), the distilled variant,
the real loading path, and a render to MP4."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from types import MappingProxyType

import av
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, LTX2VideoTransformer3DModel
from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline
from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families import save_tiny, tiny_family
from framecast.engine.families.base import Steps
from framecast.engine.families.ltx2 import Ltx2Family, build
from framecast.engine.families.ltx2.family import half_size
from framecast.engine.planning import make_plan
from framecast.engine.presets import VARIANTS, TwoStage, get_preset
from framecast.errors import ModelUnavailableError, RenderStopped
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext

SEED = 3
# 360p 16:9 plans a two-stage twin at 128x64 (stage 1 at 64x32).
SMALL = {"resolution": "360p", "aspect_ratio": "16:9", "seed": SEED, "generate_audio_switch": True}
# The tiny transformers have two blocks, so spatio-temporal guidance perturbs block 1 where the real models
# perturb 29 (LTX-2.0) or 28 (LTX-2.5), which the tiny ones do not have.
TINY_STG = {"spatio_temporal_guidance_blocks": [1]}
# The docs' guidance stack ("Multimodal Guidance": "Recommended LTX-2.3 guidance parameters"; "Full / SFT
# transformer" for LTX-2.5), written out here so the presets' copies are checked, not reused.
DOCS_GUIDANCE = {
    "guidance_scale": 3.0,
    "stg_scale": 1.0,
    "modality_scale": 3.0,
    "guidance_rescale": 0.7,
    "audio_guidance_scale": 7.0,
    "audio_stg_scale": 1.0,
    "audio_modality_scale": 3.0,
    "audio_guidance_rescale": 0.7,
}
# What the authors' distilled stages run (SimpleDenoiser): every term off; 0.42's defaults keep STG, modality
# guidance and audio CFG on, so the docs' bare ``guidance_scale=1.0`` is not enough.
DOCS_UNGUIDED = {
    "guidance_scale": 1.0,
    "audio_guidance_scale": 1.0,
    "stg_scale": 0.0,
    "audio_stg_scale": 0.0,
    "modality_scale": 1.0,
    "audio_modality_scale": 1.0,
    "spatio_temporal_guidance_blocks": None,
}
# Per architecture: the version's own call arguments (the pipeline docstring: STG block 29 and the legacy cross
# timestep for LTX-2.0, block 28 and the cross timestep for 2.3/2.5) and whether the docs swap in the
# dynamic-shifting scheduler (LTX-2.5's repo ships the distilled one; LTX-2.0's is the dev one already).
VERSION = {
    "ltx-2": ({"use_cross_timestep": False}, False),
    "ltx-2.5": ({"use_cross_timestep": True}, True),
}


def request(**fields) -> TextToVideoInput:
    return TextToVideoInput.model_validate({"prompt": "a red fox trots through snow", **SMALL, **fields})


def short_plan(preset, frames: int = 17):
    """A plan of ``preset`` cut to ``frames`` generated frames (5 s would generate 121: slow on one core)."""
    plan = make_plan(request(), preset)
    return dataclasses.replace(plan, frames=frames - 1, gen_frames=frames)


def with_tiny_stg(preset):
    return dataclasses.replace(preset, call_kwargs=MappingProxyType({**preset.call_kwargs, **TINY_STG}))


def loaded(preset) -> Ltx2Family:
    family = Ltx2Family(preset, VARIANTS.get(preset.variant))
    family.load(None, torch.float32)
    return family


def generate(family: Ltx2Family, plan, ctx: RecordingContext | None = None):
    with torch.inference_mode():
        return family.generate(plan, Steps(ctx or RecordingContext(), 0, family.denoising_steps(plan)))


def reference_pipe(arch: str, full: bool = True):
    """A fresh tiny pipeline (the same seeded weights), its scheduler as the docs leave it for full weights
    (``full``) or for distilled ones (the repo's)."""
    pipe = build.tiny(arch)
    pipe.set_progress_bar_config(disable=True)
    if full and VERSION[arch][1]:  # the LTX-2.5 docs' "Full / SFT transformer": re-enable dynamic shifting
        pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
            pipe.scheduler.config, use_dynamic_shifting=True, shift_terminal=0.1
        )
    return pipe


def common(plan, width: int, height: int) -> dict:
    return dict(
        prompt=plan.prompt,
        negative_prompt=plan.negative_prompt,
        width=width,
        height=height,
        num_frames=plan.gen_frames,
        frame_rate=24.0,
    )


def assert_same(clip, video: torch.Tensor, audio: torch.Tensor) -> None:
    assert clip.video.shape == video[0].shape
    assert (clip.video - video[0]).abs().max() < 1e-5
    assert (torch.from_numpy(clip.audio) - audio[0]).abs().max() < 1e-5


# (a) One pass
@pytest.mark.parametrize(("name", "steps"), [("tiny:ltx-2", 40), ("tiny:ltx-2.5", 30)])
def test_one_pass_equals_ltx2_pipeline_called_as_the_docs_show(name, steps):
    preset = dataclasses.replace(with_tiny_stg(get_preset(name)), two_stage=None)
    family = loaded(preset)
    plan = short_plan(preset)
    assert plan.steps == steps and plan.refine_steps == 0
    ours = generate(family, plan)

    arch = preset.architecture
    video, audio = reference_pipe(arch)(
        **common(plan, plan.gen_width, plan.gen_height),
        num_inference_steps=steps,
        **DOCS_GUIDANCE,
        **TINY_STG,
        **VERSION[arch][0],
        generator=torch.Generator().manual_seed(SEED),
        output_type="pt",
        return_dict=False,
    )
    assert_same(ours, video, audio)


# (b) Two stages
def docs_two_stage(arch: str, plan, stage_1: dict, lora=None, full: bool = True):
    """The docs' two-stage flow: stage 1 latents at half the size, the x2 latent upsample, the distilled LoRA
    (full weights) and the stage-2 scheduler, stage 2 on the stage-2 sigmas, one generator throughout."""
    pipe = reference_pipe(arch, full)
    generator = torch.Generator().manual_seed(SEED)
    video_latent, audio_latent = pipe(
        **common(plan, plan.gen_width // 2, plan.gen_height // 2),
        **stage_1,
        **VERSION[arch][0],
        generator=generator,
        output_type="latent",
        return_dict=False,
    )
    upsample_pipe = LTX2LatentUpsamplePipeline(
        vae=pipe.vae, latent_upsampler=build.tiny_latent_upsampler(arch)
    )
    upscaled = upsample_pipe(latents=video_latent, output_type="latent", return_dict=False)[0]
    if lora is not None:
        pipe.load_lora_weights(str(lora.parent), adapter_name="stage_2_distilled", weight_name=lora.name)
        pipe.set_adapters("stage_2_distilled", 1.0)
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(
        pipe.scheduler.config, use_dynamic_shifting=False, shift_terminal=None
    )
    return pipe(
        latents=upscaled,
        audio_latents=audio_latent,
        **common(plan, plan.gen_width, plan.gen_height),
        num_inference_steps=3,
        noise_scale=STAGE_2_DISTILLED_SIGMA_VALUES[0],
        sigmas=STAGE_2_DISTILLED_SIGMA_VALUES,
        **DOCS_UNGUIDED,
        **VERSION[arch][0],
        generator=generator,
        output_type="pt",
        return_dict=False,
    )


@pytest.mark.parametrize(("name", "steps"), [("tiny:ltx-2", 40), ("tiny:ltx-2.5", 30)])
def test_two_stages_of_full_weights_equal_the_docs_two_stage_flow_with_the_distilled_lora(name, steps):
    preset = with_tiny_stg(get_preset(name))
    family = loaded(preset)
    plan = short_plan(preset)
    assert (plan.steps, plan.refine_steps) == (steps, 3)
    assert preset.size_multiple == 64 and plan.gen_width % 64 == 0 and plan.gen_height % 64 == 0
    ours = generate(family, plan)

    assert family.stage_2_lora_file is not None and family.stage_2_lora_file.name == preset.two_stage.lora
    stage_1 = {"num_inference_steps": steps, **DOCS_GUIDANCE, **TINY_STG}
    video, audio = docs_two_stage(preset.architecture, plan, stage_1, lora=family.stage_2_lora_file)
    assert ours.video.shape == (17, 3, plan.gen_height, plan.gen_width)
    assert_same(ours, video, audio)


def test_two_stages_of_distilled_weights_equal_the_docs_distilled_flow():
    preset = get_preset("tiny:ltx-2.5-distilled")
    family = loaded(preset)
    plan = short_plan(preset)
    ours = generate(family, plan)

    assert (
        family.stage_2_lora_file is None
    )  # "No stage 2 LoRA is involved, since the transformer is distilled"
    stage_1 = {"num_inference_steps": 8, "sigmas": DISTILLED_SIGMA_VALUES, **DOCS_UNGUIDED}
    video, audio = docs_two_stage("ltx-2.5", plan, stage_1, full=False)
    assert_same(ours, video, audio)


def test_the_stage_2_lora_changes_the_refine_and_nothing_before_it():
    preset = with_tiny_stg(get_preset("tiny:ltx-2"))
    with_lora = loaded(preset)
    without = loaded(dataclasses.replace(preset, two_stage=TwoStage(steps=3)))
    plan = short_plan(preset)

    def stage_1(family: Ltx2Family) -> torch.Tensor:
        kwargs = {**family.call_kwargs(half_size(plan), None), "output_type": "latent"}
        with torch.inference_mode():
            return family.pipe(**kwargs, return_dict=False)[0]

    assert torch.equal(stage_1(with_lora), stage_1(without))
    assert not torch.allclose(generate(with_lora, plan).video, generate(without, plan).video, atol=1e-6)


# (c) The distilled variant
def test_the_distilled_variant_makes_one_transformer_pass_a_step_on_the_distilled_sigmas():
    family = loaded(get_preset("tiny:ltx-2.5-distilled"))
    plan = short_plan(family.preset)
    passes: list[tuple[int, float]] = []

    def record(module, args, kwargs):
        passes.append((kwargs["hidden_states"].shape[0], float(kwargs["timestep"][0])))

    hook = family.pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        generate(family, plan)
    finally:
        hook.remove()
    sigmas = [*DISTILLED_SIGMA_VALUES, *STAGE_2_DISTILLED_SIGMA_VALUES]
    assert [rows for rows, _ in passes] == [1] * len(sigmas) == [1] * (8 + 3)
    assert [t for _, t in passes] == pytest.approx([1000 * s for s in sigmas], abs=1e-3)
    assert family.denoising_steps(plan) == 11


def test_the_full_model_runs_cfg_stg_and_modality_guidance_each_step_of_stage_1():
    family = loaded(with_tiny_stg(get_preset("tiny:ltx-2.5")))
    plan = short_plan(family.preset)
    rows: list[int] = []
    hook = family.pipe.transformer.register_forward_pre_hook(
        lambda m, a, k: rows.append(k["hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        generate(family, plan)
    finally:
        hook.remove()
    # stage 1: the CFG pair in one batch, then the STG pass and the modality pass; stage 2: one pass a step
    assert rows == [2, 1, 1] * 30 + [1] * 3


# (d) The real loading path
@pytest.mark.parametrize("name", ["tiny:ltx-2.5", "tiny:ltx-2.5-distilled"])
def test_a_saved_two_stage_model_loads_from_its_folder_and_renders_the_same(name, tmp_path):
    folder = save_tiny(name, tmp_path / "weights")
    preset = get_preset(name)
    assert (folder / "latent_upsampler" / "config.json").is_file()
    assert dict(preset.component_folders) == ({} if preset.variant else {"transformer": "transformer_full"})
    if preset.component_folders:
        # transformer/ (the distilled DiT in the real repo) gets other weights, so only a model whose DiT is
        # loaded from transformer_full/ renders the same.
        config = LTX2VideoTransformer3DModel.load_config(folder / "transformer_full")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(99)
            LTX2VideoTransformer3DModel.from_config(config).save_pretrained(folder / "transformer")
    if not preset.variant:
        assert (folder / preset.two_stage.lora).is_file()
    engine = DiffusersEngine(preset, EngineOptions(model=name, model_path=str(folder)))
    engine.load()
    plan = short_plan(preset)
    from_folder = engine.generate(plan, RecordingContext())
    built = generate(tiny_family(name), plan)
    assert (from_folder.video - built.video).abs().max() < 1e-5
    assert (torch.from_numpy(from_folder.audio) - torch.from_numpy(built.audio)).abs().max() < 1e-5


@pytest.mark.parametrize(("missing", "what"), [("latent_upsampler", "latent upsampler"), ("lora", "LoRA")])
def test_a_folder_without_the_second_stages_weights_names_the_pull_command(missing, what, tmp_path):
    name = "tiny:ltx-2"
    folder = save_tiny(name, tmp_path / "weights")
    preset = get_preset(name)
    if missing == "lora":
        (folder / preset.two_stage.lora).unlink()
    else:
        for path in sorted((folder / missing).iterdir()):
            path.unlink()
    engine = DiffusersEngine(preset, EngineOptions(model=name, model_path=str(folder)))
    with pytest.raises(ModelUnavailableError, match=f"{what}.*`framecast models pull {name}`"):
        engine.load()


# (e) Plan -> render -> MP4, and cancel
@pytest.fixture(scope="module")
def distilled_engine():
    engine = DiffusersEngine(
        get_preset("tiny:ltx-2.5-distilled"), EngineOptions(model="tiny:ltx-2.5-distilled", device="cpu")
    )
    engine.load()
    return engine


def test_a_two_stage_render_is_an_mp4_of_the_exact_size_frames_and_audio_length(distilled_engine, tmp_path):
    ctx = RecordingContext()
    body = request(resolution="360p", aspect_ratio="9:16", duration="5")
    result = distilled_engine.render(body, ctx, tmp_path / "out.mp4")

    with av.open(str(result.path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = sum(1 for _ in container.decode(video=0))
        size = (video.codec_context.width, video.codec_context.height)
        seconds, rate = audio.duration * audio.time_base, audio.rate
    assert size == (360, 640) and frames == 120 and result.fps == 24
    assert rate == 48000 and abs(seconds - 5) <= Fraction(1024, rate)  # LTX-2.5's vocoder: 48 kHz
    assert ctx.steps == [(i, 11) for i in range(1, 12)]  # 8 distilled steps, then the 3-step refine
    assert any("two stages" in line and "3 refining steps" in line for line in ctx.logs)


@pytest.mark.parametrize("stage", [1, 2])
def test_cancel_in_either_stage_stops_within_one_step(distilled_engine, stage):
    plan = short_plan(distilled_engine.preset)
    stop_after = 1 if stage == 1 else plan.steps + 1  # the first step of stage 1, or of the refine
    ctx = RecordingContext(stop_after=stop_after)
    passes: list[int] = []
    hook = distilled_engine.pipe.transformer.register_forward_pre_hook(lambda m, a: passes.append(1))
    try:
        with pytest.raises(RenderStopped, match="cancelled"):
            distilled_engine.generate(plan, ctx)
    finally:
        hook.remove()
    assert ctx.steps == [(i, 11) for i in range(1, stop_after + 1)]
    assert len(passes) == stop_after


def test_a_style_lora_runs_in_both_stages_and_unloading_it_keeps_the_stage_2_lora(tmp_path):
    family = loaded(with_tiny_stg(get_preset("tiny:ltx-2")))
    plan = short_plan(family.preset)

    def stage_1() -> torch.Tensor:
        kwargs = {**family.call_kwargs(half_size(plan), None), "output_type": "latent"}
        with torch.inference_mode():
            return family.pipe(**kwargs, return_dict=False)[0]

    baseline, baseline_1 = generate(family, plan), stage_1()
    style = tmp_path / "anime.safetensors"
    build.save_random_lora(family.pipe.transformer, style, seed=20)
    family.load_lora(str(style), "style_anime")  # what creative.styles.StyleLoras does
    family.set_adapters(["style_anime"], [1.0])
    styled, styled_1 = generate(family, plan), stage_1()
    family.unload_loras()

    assert not torch.allclose(styled_1, baseline_1, atol=1e-6)
    assert not torch.allclose(styled.video, baseline.video, atol=1e-6)
    assert torch.equal(generate(family, plan).video, baseline.video)
