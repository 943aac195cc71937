"""The Helios family (families/helios/) on its tiny models: Framecast's path equals diffusers' Helios pipelines
called as their docs call them, a saved folder loads through the real path, 5 s and 10 s are generated natively
(whole 33-frame chunks, no stretch) and encoded to exact MP4s, progress counts every step of every chunk, a cancel
stops within one step, and each lever the family declares works."""

from __future__ import annotations

import dataclasses

import av
import pytest
import torch

from framecast.cli import main
from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families import save_tiny
from framecast.engine.families.helios import HeliosFamily, build
from framecast.engine.planning import make_plan
from framecast.engine.planning.frames import on_rule
from framecast.engine.planning.plan import RenderPlan
from framecast.engine.presets import get_preset
from framecast.engine.speed import attention, fp8
from framecast.errors import ConfigError, RenderStopped
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext

BASE, DISTILLED = "tiny-helios", "tiny-helios-distilled"


def request(**fields) -> TextToVideoInput:
    return TextToVideoInput.model_validate({"prompt": "a red fox in the snow", "seed": 11, **fields})


@pytest.fixture(scope="module")
def engines() -> dict[str, DiffusersEngine]:
    loaded = {
        name: DiffusersEngine(get_preset(name), EngineOptions(device="cpu")) for name in (BASE, DISTILLED)
    }
    for engine in loaded.values():
        engine.load()
    return loaded


def two_chunks(engine: DiffusersEngine, seed: int = 11) -> RenderPlan:
    """A 2 s plan: two 33-frame chunks (65 frames after the cut), so the second one denoises with history."""
    plan = make_plan(request(resolution="360p", seed=seed), engine.preset)
    frames = 2 * plan.fps
    shot = dataclasses.replace(plan.shots[0], frames=frames, duration=2.0)
    return dataclasses.replace(plan, frames=frames, gen_frames=on_rule(frames, 4, 33), shots=(shot,))


def docs_call(pipe, plan: RenderPlan, **kwargs) -> torch.Tensor:
    """The pipeline called as diffusers' Helios docs call it (the seed in a CPU generator), on ``plan``'s size and
    frames; tiny models take prompts of at most 32 tokens."""
    with torch.inference_mode():
        return pipe(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            guidance_scale=plan.guidance_scale,
            generator=torch.Generator().manual_seed(plan.seed),
            output_type="pt",
            max_sequence_length=32,
            **kwargs,
        ).frames[0]


class ForwardCounter:
    """Counts the transformer's forward calls (a PyTorch forward pre-hook: the real model runs unchanged)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.calls = 0
        self.handle = model.register_forward_pre_hook(self._count)

    def _count(self, module: torch.nn.Module, args: tuple) -> None:
        self.calls += 1

    def close(self) -> None:
        self.handle.remove()


def probe(path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {
            "size": (video.codec_context.width, video.codec_context.height),
            "fps": video.average_rate,
            "frames": sum(1 for _ in container.decode(video=0)),
            "duration": video.duration * video.time_base,
        }


# 1. Framecast's path is the diffusers pipeline's


def test_framecast_renders_the_frames_helios_pipeline_renders_as_its_docs_call_it(engines):
    engine = engines[BASE]
    plan = two_chunks(engine)
    ours = engine.generate(plan, RecordingContext()).video
    reference = docs_call(engine.pipe, plan, num_inference_steps=plan.steps)
    assert ours.shape == reference.shape == (65, 3, plan.gen_height, plan.gen_width)
    assert (ours - reference).abs().max() < 1e-6
    # The comparison means something: the prompt and the seed both reach the frames.
    other_prompt = dataclasses.replace(plan, prompt="a grey owl at night")
    assert (engine.generate(other_prompt, RecordingContext()).video - ours).abs().max() > 1e-3
    assert (engine.generate(two_chunks(engine, seed=12), RecordingContext()).video - ours).abs().max() > 1e-3


def test_the_distilled_variant_renders_what_the_pyramid_pipeline_renders_as_its_docs_call_it(engines):
    engine = engines[DISTILLED]
    assert type(engine.pipe).__name__ == "HeliosPyramidPipeline" and engine.pipe.config.is_distilled
    assert type(engine.pipe.scheduler).__name__ == "HeliosDMDScheduler"
    plan = two_chunks(engine)
    ours = engine.generate(plan, RecordingContext()).video
    # As the docs call Helios-Distilled: the steps per stage, no CFG, the first chunk amplified.
    reference = docs_call(
        engine.pipe, plan, pyramid_num_inference_steps_list=[1, 1, 1], is_amplify_first_chunk=True
    )
    assert ours.shape == reference.shape == (65, 3, plan.gen_height, plan.gen_width)
    assert (ours - reference).abs().max() < 1e-6


@pytest.mark.parametrize("name", [BASE, DISTILLED])
def test_a_saved_tiny_helios_loads_through_the_model_path_and_renders_the_same(engines, name, tmp_path):
    folder = save_tiny(name, tmp_path / "weights")
    loaded = DiffusersEngine(
        get_preset(name), EngineOptions(device="cpu", model=name, model_path=str(folder))
    )
    loaded.load()
    assert type(loaded.pipe) is type(engines[name].pipe)
    assert type(loaded.pipe.scheduler) is type(engines[name].pipe.scheduler)
    assert loaded.pipe.vae.dtype == torch.float32  # the family's VAE dtype, through from_pretrained
    plan = two_chunks(loaded)
    from_folder = loaded.generate(plan, RecordingContext()).video
    assert torch.allclose(from_folder, engines[name].generate(plan, RecordingContext()).video, atol=1e-6)


def test_the_tiny_model_is_built_from_fixed_seeds_without_touching_the_callers_random_state():
    state = torch.random.get_rng_state()
    first, second = build.tiny(), build.tiny()
    assert torch.equal(torch.random.get_rng_state(), state)
    for a, b in zip(
        first.transformer.state_dict().values(), second.transformer.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_a_preset_whose_chunk_the_vae_cannot_make_is_refused_at_load():
    preset = dataclasses.replace(get_preset(BASE), frame_chunk=32)  # 4x time compression makes 4k + 1 frames
    with pytest.raises(ConfigError, match="chunks of 32 frames"):
        HeliosFamily(preset).load(None, torch.float32)


def test_the_full_size_config_is_the_published_14b_transformer_on_the_wan21_vae():
    from diffusers import AutoencoderKLWan, HeliosTransformer3DModel

    cfg = build.load_config()
    with torch.device("meta"):
        transformer = HeliosTransformer3DModel.from_config(cfg["transformer"])
        vae = AutoencoderKLWan.from_config(cfg["vae"])
    assert 14.2e9 < sum(p.numel() for p in transformer.parameters()) < 14.4e9
    assert (vae.config.z_dim, vae.config.scale_factor_temporal, vae.config.scale_factor_spatial) == (16, 4, 8)
    assert cfg["transformer"]["in_channels"] == vae.config.z_dim


# 2. Long clips are generated, not stretched, and the MP4 is exact


@pytest.mark.parametrize(
    ("duration", "resolution", "size", "gen_frames"),
    [("5", "720p", (1280, 720), 129), ("10", "360p", (640, 360), 261)],
)
def test_a_clip_is_generated_natively_in_whole_chunks_and_encoded_to_an_exact_mp4(
    engines, tmp_path, duration, resolution, size, gen_frames
):
    engine = engines[BASE]
    plan = make_plan(request(duration=duration, resolution=resolution), engine.preset)
    # Whole 33-frame chunks cut to 4k + 1, covering the duration: no stretch, no second segment.
    assert (plan.temporal, plan.segments, plan.gen_frames) == ("trim", 1, gen_frames)
    ctx = RecordingContext()
    result = engine.render(request(duration=duration, resolution=resolution), ctx, tmp_path / "out.mp4")
    info = probe(result.path)
    frames = int(duration) * 24
    assert info == {"size": size, "fps": 24, "frames": frames, "duration": int(duration)}
    assert result.frames == frames and not any("motion slowed" in line for line in ctx.logs)


def test_the_pipeline_makes_exactly_the_frames_the_plan_counts(engines):
    engine = engines[DISTILLED]
    eight = make_plan(request(duration="8", resolution="360p", aspect_ratio="9:16"), engine.preset)
    assert (eight.gen_frames, eight.gen_width, eight.gen_height) == (197, 64, 128)  # 6 chunks: 198 cut to 197
    assert engine.generate(eight, RecordingContext()).video.shape == (197, 3, 128, 64)


# 3. Progress and cancel


@pytest.mark.parametrize(("name", "passes"), [(BASE, 2), (DISTILLED, 1)])
def test_progress_counts_every_denoising_step_of_every_chunk(engines, name, passes):
    engine = engines[name]
    plan = make_plan(request(resolution="360p"), engine.preset)  # 5 s: 4 chunks
    counter = ForwardCounter(engine.pipe.transformer)
    ctx = RecordingContext()
    try:
        engine.generate(plan, ctx)
    finally:
        counter.close()
    steps = counter.calls // passes  # CFG runs the transformer twice a step
    # Base: 2 steps in each of 4 chunks; Distilled: 1 step per pyramid stage, the first chunk's doubled.
    assert steps == {BASE: 2 * 4, DISTILLED: 3 * (4 + 1)}[name]
    assert ctx.steps == [(i, steps) for i in range(1, steps + 1)]


def test_cancel_stops_within_one_step_inside_a_later_chunk(engines, tmp_path):
    engine = engines[BASE]
    ctx = RecordingContext(stop_after=3)  # the first step of the second chunk
    counter = ForwardCounter(engine.pipe.transformer)
    try:
        with pytest.raises(RenderStopped, match="cancelled"):
            engine.render(request(resolution="360p"), ctx, tmp_path / "out.mp4")
    finally:
        counter.close()
    assert ctx.steps == [(1, 8), (2, 8), (3, 8)]
    assert counter.calls == 3 * 2  # nothing ran after the step that saw the cancel
    assert not (tmp_path / "out.mp4").exists()


# 4. The levers it declares, and the one it does not


def fresh(name: str) -> HeliosFamily:
    family = HeliosFamily(get_preset(name))
    family.load(None, torch.float32)
    return family


def frames_of(family: HeliosFamily, plan: RenderPlan) -> torch.Tensor:
    from framecast.engine.families.base import Steps

    with torch.inference_mode():
        return family.generate(plan, Steps(RecordingContext(), 0, family.denoising_steps(plan))).video


def test_helios_declares_attention_compile_and_fp8_but_not_the_first_block_cache():
    from diffusers import FirstBlockCacheConfig

    assert HeliosFamily.levers == {"attention", "compile", "fp8"}
    transformer = fresh(BASE).pipe.transformer
    with pytest.raises(ValueError, match="HeliosTransformerBlock.*not registered"):
        transformer.enable_cache(FirstBlockCacheConfig(threshold=0.0))


def test_the_attention_lever_picks_a_backend_that_renders_the_same_frames(engines):
    family = fresh(BASE)
    plan = two_chunks(engines[BASE])
    reference = frames_of(family, plan)
    try:
        attention.apply(family.modules(), attention.AttentionOptions(time_tokens=64))
        assert torch.allclose(frames_of(family, plan), reference, atol=1e-5)
    finally:
        attention.set_attention_backend(family.pipe.transformer, "native")


@pytest.fixture
def counted_graphs():
    """A torch.compile backend that runs each graph eagerly and counts the graphs built."""
    graphs: list[int] = []

    def backend(gm, example_inputs):
        graphs.append(len(example_inputs))
        return gm.forward

    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.reset()
    yield graphs, backend
    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = limit


@pytest.mark.parametrize("name", [BASE, DISTILLED])
def test_compiled_blocks_are_warmed_at_load_and_render_the_same_frames_with_no_new_graph(
    engines, name, counted_graphs, tmp_path, monkeypatch
):
    graphs, backend = counted_graphs
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    engine = DiffusersEngine(get_preset(name), EngineOptions(device="cpu", data_dir=tmp_path / "data"))
    engine.load()
    engine.compile_and_warm(backend=backend)
    warmed = len(graphs)
    assert warmed >= 1
    plan = two_chunks(engine)
    assert (plan.gen_width, plan.gen_height) == (
        128,
        64,
    )  # 16:9, the shape FRAMECAST_COMPILE_WARMUP=default warms
    compiled = engine.generate(plan, RecordingContext()).video
    assert len(graphs) == warmed  # every shape of every chunk (and pyramid stage) compiled at load
    assert torch.allclose(compiled, engines[name].generate(plan, RecordingContext()).video, atol=1e-5)


def test_the_fp8_lever_swaps_every_block_linear_and_moves_the_frames_a_little(engines):
    family = fresh(BASE)
    plan = two_chunks(engines[BASE])
    reference = frames_of(family, plan)
    fp8.apply(family.modules(), fp8.Fp8Options())
    swapped = [m for m in family.pipe.transformer.blocks.modules() if isinstance(m, fp8.Fp8Linear)]
    assert len(swapped) == 10 * len(family.pipe.transformer.blocks)  # q, k, v, out of both attentions; FFN
    quantized = frames_of(family, plan)  # e4m3 emulated on the CPU, the arithmetic of the GPU kernel
    assert 0 < float((quantized - reference).norm() / reference.norm()) < 0.05


# 5. The presets


def test_the_presets_carry_the_authors_settings():
    base, distilled = get_preset("helios-14b"), get_preset("helios-14b-distilled")
    assert (base.repo_id, base.pipeline_class) == ("BestWishYsh/Helios-Base", "HeliosPipeline")
    assert (base.fps, base.native_width, base.native_height, base.steps, base.guidance_scale) == (
        24,
        640,
        384,
        50,
        5.0,
    )
    assert (base.frame_step, base.frame_chunk, base.max_frames, base.licence) == (4, 33, 1449, "Apache-2.0")
    assert dict(base.call_kwargs) == {"history_sizes": (16, 2, 1), "keep_first_frame": True}
    assert (distilled.repo_id, distilled.pipeline_class) == (
        "BestWishYsh/Helios-Distilled",
        "HeliosPyramidPipeline",
    )
    assert (distilled.steps, distilled.guidance_scale, distilled.call_kwargs["is_amplify_first_chunk"]) == (
        2,
        1.0,
        True,
    )
    assert distilled.negative_prompt == base.negative_prompt and "walking backwards" in base.negative_prompt
    # 16:9 generates the trained 640x384 itself; every duration is one pass.
    plan = make_plan(request(duration="10"), base)
    assert (plan.gen_width, plan.gen_height, plan.gen_frames, plan.temporal) == (640, 384, 261, "trim")


def test_models_list_shows_the_helios_presets_and_the_distilled_trade_off(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    base = next(line for line in lines if line.startswith("helios-14b "))
    assert "41 GB" in base and "Apache-2.0" in base
    at = next(i for i, line in enumerate(lines) if line.startswith("helios-14b-distilled "))
    assert lines[at + 1].startswith("    trade-off: Helios-Distilled")
    assert "built in" in next(line for line in lines if line.startswith("tiny-helios "))
