"""The HunyuanVideo 1.5 family (families/hunyuan15/) against diffusers' ``HunyuanVideo15Pipeline``, on its tiny
random-weight model of the real classes (fp32, CPU): the same frames, the real loading path, exact MP4s, cancel
within a step, the guider, the grid check, the speed levers it declares, and its published configs."""

from __future__ import annotations

import dataclasses
import inspect

import av
import pytest
import torch

from framecast.engine import EngineOptions, commands
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families import get_family, save_tiny
from framecast.engine.families.base import Steps
from framecast.engine.families.hunyuan15 import HunyuanVideo15Family, build
from framecast.engine.planning import make_plan
from framecast.engine.presets import VARIANTS, get_preset
from framecast.engine.speed import attention, fp8
from framecast.engine.speed.compile import CompileOptions
from framecast.engine.speed.compile import apply as compile_blocks
from framecast.errors import ConfigError, RenderStopped
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext

CPU = torch.device("cpu")
TINY = "tiny-hunyuan15"
# The quoted words reach the ByT5 glyph encoder, as a sign's text does with the real model.
PROMPT = 'a red fox holding a sign that says "hello"'


def request(**fields) -> TextToVideoInput:
    return TextToVideoInput.model_validate({"prompt": PROMPT, "seed": 11, **fields})


def short_plan(**fields):
    """A 1:1 plan of 33 generated frames: the tiny model's shape at a third of the cost of a 5 s clip."""
    plan = make_plan(request(resolution="360p", aspect_ratio="1:1", **fields), get_preset(TINY))
    return dataclasses.replace(plan, gen_frames=33, frames=32)


def counting_transformer_calls(pipe) -> tuple[list[int], torch.utils.hooks.RemovableHandle]:
    calls: list[int] = []
    return calls, pipe.transformer.register_forward_pre_hook(lambda module, args: calls.append(1))


@pytest.fixture(scope="module")
def engine() -> DiffusersEngine:
    loaded = DiffusersEngine(get_preset(TINY), EngineOptions(device="cpu"))
    loaded.load()
    return loaded


@pytest.fixture
def family() -> HunyuanVideo15Family:
    """A tiny model of its own, for a lever to change."""
    model = HunyuanVideo15Family(get_preset(TINY))
    model.load(None, torch.float32)
    return model


def generate(model: HunyuanVideo15Family, plan) -> torch.Tensor:
    with torch.inference_mode():
        return model.generate(plan, Steps(RecordingContext(), 0, plan.steps)).video


def test_framecast_renders_the_frames_hunyuan_video15_pipeline_renders_as_its_docs_call_it(engine):
    plan = short_plan(negative_prompt="blurry")
    ctx = RecordingContext()
    framecast = engine.generate(plan, ctx).video
    again = engine.generate(plan, RecordingContext()).video  # a fresh guider each call: no state carried over

    # diffusers' docs: tiling on, guidance set on the guider, not passed to the call.
    pipe = build.tiny()
    pipe.set_progress_bar_config(disable=True)
    pipe.vae.enable_tiling()
    pipe.guider = pipe.guider.new(guidance_scale=6.0)
    with torch.inference_mode():
        reference = pipe(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            num_inference_steps=plan.steps,
            generator=torch.Generator().manual_seed(plan.seed),
            output_type="pt",
        ).frames[0]

    assert plan.negative_prompt == "blurry" and plan.guidance_scale == 6.0
    assert framecast.shape == reference.shape == (33, 3, 96, 96)
    assert (framecast - reference).abs().max() < 1e-6
    assert torch.equal(framecast, again)
    assert ctx.steps == [(1, 2), (2, 2)]


def test_a_saved_tiny_pipeline_loads_from_its_folder_and_renders_the_same_frames(engine, tmp_path):
    folder = save_tiny(TINY, tmp_path / "weights")
    loaded = DiffusersEngine(get_preset(TINY), EngineOptions(device="cpu", model_path=str(folder)))
    loaded.load()
    assert loaded.pipe.vae.use_tiling  # tiled whichever way it was built
    plan = short_plan()
    assert torch.allclose(
        loaded.generate(plan, RecordingContext()).video,
        engine.generate(plan, RecordingContext()).video,
        atol=1e-6,
    )


def test_a_720p_5_second_request_renders_an_exact_1280x720_mp4_of_120_frames_at_24_fps(engine, tmp_path):
    ctx = RecordingContext()
    result = engine.render(request(), ctx, tmp_path / "out.mp4")

    with av.open(str(result.path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        size = (stream.codec_context.width, stream.codec_context.height)
        assert (size, frames, stream.average_rate, stream.duration * stream.time_base) == (
            (1280, 720),
            120,
            24,
            5,
        )
        assert not container.streams.audio
    assert (result.width, result.height, result.frames, result.fps) == (1280, 720, 120, 24)
    assert ctx.steps == [(1, 2), (2, 2)]
    assert any("128x64, 121 frames, 2 steps" in line for line in ctx.logs)


def test_cancel_stops_the_render_within_one_step(engine, tmp_path):
    ctx = RecordingContext(stop_after=1)
    calls, hook = counting_transformer_calls(engine.pipe)
    try:
        with pytest.raises(RenderStopped) as stopped:
            engine.render(request(), ctx, tmp_path / "out.mp4")
    finally:
        hook.remove()
    assert stopped.value.reason == "cancelled"
    assert ctx.steps == [(1, 2)]
    assert len(calls) == 2  # step 1's conditional and unconditional passes, nothing after
    assert not (tmp_path / "out.mp4").exists()


def test_guidance_is_the_plans_scale_on_a_fresh_guider(engine):
    plan = short_plan(negative_prompt="blurry")
    calls, hook = counting_transformer_calls(engine.pipe)
    try:
        with_cfg = engine.generate(plan, RecordingContext()).video
        assert len(calls) == 2 * plan.steps
        calls.clear()
        without = engine.generate(dataclasses.replace(plan, guidance_scale=1.0), RecordingContext()).video
        assert len(calls) == plan.steps  # the CFG-distilled variant's setting: one pass a step
        other_negative = dataclasses.replace(plan, guidance_scale=1.0, negative_prompt="sharp")
        assert torch.equal(engine.generate(other_negative, RecordingContext()).video, without)
    finally:
        hook.remove()
    assert not torch.allclose(with_cfg, without, atol=1e-3)


def test_a_size_or_frame_count_off_the_models_grid_is_refused_not_floored(engine):
    plan = short_plan()
    for off in ({"gen_width": 72}, {"gen_height": 104}, {"gen_frames": 34}):
        with pytest.raises(ConfigError, match="off the model's grid"):
            engine.generate(dataclasses.replace(plan, **off), RecordingContext())


def test_the_attention_lever_never_sets_a_backend_that_refuses_the_models_mask(family):
    assert family.modules().masked_attention  # so the lever probes with a mask (tests/engine/speed)
    plan = short_plan()
    reference = generate(family, plan)
    family.pipe.transformer.set_attention_backend("_native_flash")
    try:
        with pytest.raises(ValueError, match="attn_mask"):  # what an unmasked probe's pick would do
            generate(family, plan)
        attention.apply(family.modules(), attention.AttentionOptions(time_tokens=64))
        processor = family.pipe.transformer.transformer_blocks[0].attn.processor
        assert processor._attention_backend.value == "native"
        assert torch.allclose(generate(family, plan), reference, atol=1e-6)
    finally:
        attention.set_attention_backend(family.pipe.transformer, "native")


@pytest.fixture
def counted_graphs():
    """A torch.compile backend that runs each graph eagerly and counts the graphs built."""
    graphs: list[int] = []

    def backend(gm, example_inputs):
        graphs.append(1)
        return gm.forward

    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.reset()
    yield graphs, backend
    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = limit


def test_the_compiled_blocks_render_the_same_frames_and_warm_up_takes_one_step(
    counted_graphs, engine, tmp_path, monkeypatch
):
    graphs, backend = counted_graphs
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    compiled = DiffusersEngine(get_preset(TINY), EngineOptions(device="cpu", data_dir=tmp_path))
    compiled.load()
    steps, hook = counting_transformer_calls(compiled.pipe)
    try:
        seconds = compiled.compile_and_warm(backend=backend)  # fullgraph=True: a graph break fails
        assert list(seconds) == [(128, 64, 121)] and len(steps) == 2  # one step, both CFG passes
    finally:
        hook.remove()
    warmed = len(graphs)
    assert warmed >= 1

    plan = make_plan(request(), compiled.preset)
    frames = compiled.generate(plan, RecordingContext()).video
    assert len(graphs) == warmed  # the warmed shape: nothing compiles in the request
    assert torch.allclose(frames, engine.generate(plan, RecordingContext()).video, atol=1e-5)


def test_regional_compile_with_the_eager_backend_keeps_the_frames(family):
    plan = short_plan()
    reference = generate(family, plan)
    torch._dynamo.reset()
    try:
        compile_blocks(family.modules(), CompileOptions(backend="eager"))
        assert torch.allclose(generate(family, plan), reference, atol=1e-5)
    finally:
        torch._dynamo.reset()


def test_fp8_swaps_the_block_linears_and_moves_the_frames_a_little(family):
    plan = short_plan()
    reference = generate(family, plan)
    blocks = family.pipe.transformer.transformer_blocks
    linears = sum(1 for m in blocks.modules() if type(m) is torch.nn.Linear)
    fp8.apply(family.modules())
    assert sum(1 for m in blocks.modules() if isinstance(m, fp8.Fp8Linear)) == linears > 0
    assert not any(isinstance(m, fp8.Fp8Linear) for m in family.pipe.transformer.x_embedder.modules())
    quantised = generate(family, plan)
    assert 0 < float((quantised - reference).norm() / reference.norm()) < 5e-2


def test_the_family_declares_the_levers_tested_here_and_is_found_by_its_preset_name():
    assert get_family(get_preset("hunyuanvideo-1.5-480p").family) is HunyuanVideo15Family
    assert HunyuanVideo15Family.levers == {"attention", "compile", "fp8"}
    assert not HunyuanVideo15Family.continues and not HunyuanVideo15Family.windows
    for name in (
        "hunyuanvideo-1.5-480p",
        "hunyuanvideo-1.5-720p",
        "hunyuanvideo-1.5-480p-cfg-distilled",
        TINY,
    ):
        assert get_preset(name).extend == "shots"  # no continuation, no windows: shots of one subject


def test_each_preset_generates_at_the_bucket_its_pipeline_picks_for_16_9():
    from diffusers.pipelines.hunyuan_video1_5.image_processor import HunyuanVideo15ImageProcessor

    for name, arch in (("hunyuanvideo-1.5-480p", "480p"), ("hunyuanvideo-1.5-720p", "720p")):
        preset = get_preset(name)
        target = build.load_config(f"hunyuanvideo-1.5-{arch}")["transformer"]["target_size"]
        height, width = HunyuanVideo15ImageProcessor(vae_scale_factor=16).calculate_default_height_width(
            9, 16, target
        )
        plan = make_plan(request(), preset)
        assert (
            (plan.gen_width, plan.gen_height)
            == (width, height)
            == (preset.native_width, preset.native_height)
        )
        assert (plan.gen_frames, plan.fps, plan.steps) == (121, 24, 50)


def test_the_cfg_distilled_variant_is_the_480p_model_with_its_own_weights_and_no_cfg():
    variant = get_preset("hunyuanvideo-1.5-480p-cfg-distilled")
    base = get_preset("hunyuanvideo-1.5-480p")
    assert VARIANTS[variant.variant].base == base.name
    assert variant.repo_id.endswith("480p_t2v_distilled") and variant.repo_id != base.repo_id
    assert (variant.steps, variant.guidance_scale, base.guidance_scale) == (50, 1.0, 6.0)
    expected = build.load_config("hunyuanvideo-1.5-480p-cfg-distilled")
    assert variant.guidance_scale == expected["guider"]["guidance_scale"]
    assert variant.flow_shift == expected["scheduler"]["shift"]
    assert "negative prompt has no effect" in variant.tradeoff


def test_the_published_configs_build_models_of_the_published_sizes():
    from diffusers import AutoencoderKLHunyuanVideo15, HunyuanVideo15Transformer3DModel
    from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    def billions(model: torch.nn.Module) -> float:
        return sum(p.numel() for p in model.parameters()) / 1e9

    for name in ("hunyuanvideo-1.5-480p", "hunyuanvideo-1.5-720p", "hunyuanvideo-1.5-480p-cfg-distilled"):
        cfg = build.load_config(name)
        preset = get_preset(name)
        assert cfg["repo_id"] == preset.repo_id and cfg["scheduler"]["shift"] == preset.flow_shift
        assert cfg["transformer"]["task_type"] == "t2v"
        # The class defaults are 480p image-to-video's; nothing in the config may be a name the class lacks.
        accepted = inspect.signature(HunyuanVideo15Transformer3DModel.__init__).parameters
        assert set(cfg["transformer"]) <= set(accepted)
    cfg = build.load_config("hunyuanvideo-1.5-480p")
    text = build.load_config(cfg["text_encoder"])
    glyph = build.load_config(cfg["text_encoder_2"])
    with torch.device("meta"):  # shapes only: no memory, no time
        transformer = HunyuanVideo15Transformer3DModel.from_config(cfg["transformer"])
        vae = AutoencoderKLHunyuanVideo15.from_config(cfg["vae"])
        qwen = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(**text["config"]))
        byt5 = T5EncoderModel(T5Config(**glyph["config"]))
    assert round(billions(transformer), 2) == 8.33  # "8.3 billion parameters" (the authors' README)
    assert round(billions(qwen), 2) == 7.07 and round(billions(byt5), 2) == 0.22
    assert round(billions(vae) * 4, 2) == 5.04  # GB in fp32: the size of Tencent's vae/ weights
    assert qwen.config.hidden_size == cfg["transformer"]["text_embed_dim"]
    assert byt5.config.d_model == cfg["transformer"]["text_embed_2_dim"]


def test_the_full_size_builder_makes_the_configs_networks_on_any_device():
    cfg = build.tiny_config("hunyuanvideo-1.5-720p")
    transformer, vae = build.build_transformer_and_vae(cfg, CPU, torch.bfloat16)
    assert transformer.dtype == vae.dtype == torch.bfloat16
    assert transformer.config.target_size == 64 and vae.config.spatial_compression_ratio == 16
    again, _ = build.build_transformer_and_vae(cfg, CPU, torch.bfloat16)
    assert all(torch.equal(a, b) for a, b in zip(transformer.parameters(), again.parameters(), strict=True))


def test_models_list_shows_the_hunyuan_presets_with_their_licence_and_the_variants_tradeoff():
    lines = commands.models_list(EngineOptions()).splitlines()
    for name in ("hunyuanvideo-1.5-480p", "hunyuanvideo-1.5-720p"):
        line = next(line for line in lines if line.startswith(name + " "))
        assert "53 GB" in line and "NOT valid in the EU, the UK or South Korea" in line
    distilled = next(
        i for i, line in enumerate(lines) if line.startswith("hunyuanvideo-1.5-480p-cfg-distilled ")
    )
    assert lines[distilled + 1].startswith("    trade-off: CFG-distilled weights")
    assert "built in" in next(line for line in lines if line.startswith(TINY + " "))
