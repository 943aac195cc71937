from __future__ import annotations

import dataclasses
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from framecast.engine import EngineOptions, presets
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families import save_tiny, tiny_pipeline
from framecast.engine.loading import pick_offload
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.errors import ConfigError, RenderStopped
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext, variant_engine


def request(**fields) -> TextToVideoInput:
    return TextToVideoInput.model_validate({"prompt": "a red fox in the snow", "seed": 11, **fields})


def probe(path):
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        frames = sum(1 for _ in container.decode(video=0))
        info = {
            "codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "pix_fmt": video.codec_context.pix_fmt,
            "fps": video.average_rate,
            "frames": frames,
            "duration": video.duration * video.time_base,
        }
        if audio is not None:
            info["audio"] = (audio.codec_context.name, audio.duration * audio.time_base, audio.rate)
        return info


def test_tiny_wan_renders_a_default_request_to_an_exact_720p_5_second_mp4(tiny_wan, tmp_path):
    ctx = RecordingContext()
    result = tiny_wan.render(request(), ctx, tmp_path / "out.mp4")

    info = probe(result.path)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["size"] == (1280, 720)
    assert info["fps"] == 16 and info["frames"] == 80 and info["duration"] == 5
    assert "audio" not in info
    assert (result.width, result.height, result.frames, result.fps, result.seed) == (1280, 720, 80, 16, 11)
    assert result.extra["file_size"] == result.path.stat().st_size
    assert ctx.steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [line for line in ctx.logs if line.startswith("step ")] == [
        "step 1/4",
        "step 2/4",
        "step 3/4",
        "step 4/4",
    ]


def test_tiny_ltx2_renders_video_with_a_joint_aac_track_of_the_same_length(tiny_ltx2, tmp_path):
    result = tiny_ltx2.render(request(generate_audio_switch=True), RecordingContext(), tmp_path / "out.mp4")

    info = probe(result.path)
    assert info["codec"] == "h264" and info["size"] == (1280, 720)
    assert info["fps"] == 24 and info["frames"] == 120 and info["duration"] == 5
    codec, seconds, rate = info["audio"]
    assert codec == "aac" and rate == 16000
    assert abs(seconds - 5) <= Fraction(1024, rate)
    assert result.has_audio


def test_tiny_ltx2_without_the_audio_switch_writes_no_audio_track(tiny_ltx2, tmp_path):
    result = tiny_ltx2.render(request(resolution="360p"), RecordingContext(), tmp_path / "out.mp4")
    assert "audio" not in probe(result.path) and not result.has_audio


def test_same_seed_gives_identical_frames_and_another_seed_different_ones(tiny_ltx2):
    preset = get_preset("tiny-ltx2")
    small = {"resolution": "360p", "aspect_ratio": "1:1", "generate_audio_switch": True}
    first, again, other = (
        tiny_ltx2.generate(make_plan(request(seed=seed, **small), preset), RecordingContext())
        for seed in (5, 5, 6)
    )
    assert first.video.shape == (121, 3, 160, 160)
    assert torch.equal(first.video, again.video) and np.array_equal(first.audio, again.audio)
    assert not torch.equal(first.video, other.video)
    assert not np.array_equal(first.audio, other.audio)


def test_cancel_of_running_render_stops_within_one_step(tiny_wan, tmp_path):
    ctx = RecordingContext(stop_after=1, reason="cancelled")
    with pytest.raises(RenderStopped) as stopped:
        tiny_wan.render(request(), ctx, tmp_path / "out.mp4")
    assert stopped.value.reason == "cancelled"
    assert ctx.steps == [(1, 4)]
    assert not (tmp_path / "out.mp4").exists()


def test_a_render_past_its_deadline_stops_before_the_first_step(tiny_wan, tmp_path):
    ctx = RecordingContext(stop_after=0, reason="request_timeout")
    with pytest.raises(RenderStopped, match="request_timeout"):
        tiny_wan.render(request(), ctx, tmp_path / "out.mp4")
    assert ctx.steps == []


def test_a_saved_pipeline_loads_through_framecast_model_path_and_renders_the_same(tiny_ltx2, tmp_path):
    folder = save_tiny("tiny-ltx2", tmp_path / "weights")
    engine = DiffusersEngine(
        get_preset("tiny-ltx2"), EngineOptions(model="tiny-ltx2", model_path=str(folder))
    )
    engine.load()
    small = request(seed=3, resolution="360p")
    loaded = engine.render(small, RecordingContext(), tmp_path / "loaded.mp4")
    assert probe(loaded.path)["size"] == (640, 360)
    # The loaded weights are the built ones (to float rounding).
    plan = make_plan(small, get_preset("tiny-ltx2"))
    from_folder = engine.generate(plan, RecordingContext()).video
    built = tiny_ltx2.generate(plan, RecordingContext()).video
    assert torch.allclose(from_folder, built, atol=1e-5)


def test_a_stretched_long_clip_keeps_the_full_duration_when_the_operator_asks_for_it(tmp_path):
    engine = DiffusersEngine(get_preset("tiny-ltx2"), EngineOptions(device="cpu", long_clips="stretch"))
    ctx = RecordingContext()
    plan_request = request(resolution="360p", duration="8", generate_audio_switch=True)
    result = engine.render(plan_request, ctx, tmp_path / "long.mp4")
    info = probe(result.path)
    assert info["frames"] == 192 and info["duration"] == 8
    assert abs(info["audio"][1] - 8) <= Fraction(1024, 16000)
    assert any("motion slowed" in line for line in ctx.logs)


def test_a_long_clip_on_a_model_without_windows_or_chaining_is_shots_of_one_subject(tiny_ltx2, tmp_path):
    ctx = RecordingContext()
    result = tiny_ltx2.render(
        request(resolution="360p", duration="8", generate_audio_switch=True), ctx, tmp_path / "s.mp4"
    )
    info = probe(result.path)
    assert info["frames"] == 192 and info["duration"] == 8
    assert abs(info["audio"][1] - 8) <= Fraction(1024, 16000)
    assert any("shots of one subject" in line for line in ctx.logs)
    assert not any("motion slowed" in line for line in ctx.logs)
    shots = result.shots or []
    assert len(shots) == 3 and all(s["prompt"].endswith(".") and "fox" in s["prompt"] for s in shots)


def test_offload_mode_follows_free_gpu_memory_unless_set():
    wan = get_preset("wan2.2-ti2v-5b")
    assert pick_offload("auto", "cpu", 0, wan) == "none"
    assert pick_offload("auto", "cuda", 80, wan) == "none"
    assert pick_offload("auto", "cuda", 24, wan) == "model"
    assert pick_offload("auto", "cuda", 12, wan) == "group"
    assert pick_offload("sequential", "cuda", 80, wan) == "sequential"
    with pytest.raises(ConfigError, match="FRAMECAST_OFFLOAD"):
        EngineOptions(offload="disk")


def test_multi_clip_render_keeps_exact_length_and_counts_steps_across_shots(tiny_wan, tmp_path):
    ctx = RecordingContext()
    multi = request(resolution="360p", generate_multi_clip_switch=True)
    result = tiny_wan.render(multi, ctx, tmp_path / "multi.mp4")
    shots = len(result.shots or [])
    assert shots >= 2
    assert ctx.steps == [(i, 4 * shots) for i in range(1, 4 * shots + 1)]
    info = probe(result.path)
    assert info["frames"] == 80 and info["duration"] == 5


def test_a_long_clip_is_chained_from_segments_that_continue_each_other(tmp_path):
    engine = DiffusersEngine(get_preset("tiny-wan-ti2v"), EngineOptions(model="tiny-wan-ti2v", device="cpu"))
    ctx = RecordingContext()
    result = engine.render(request(resolution="360p"), ctx, tmp_path / "chain.mp4")
    # 120 frames from 41-frame segments: 41 + 40 + 40 = 121, the last one dropped
    assert any("3 segments" in line for line in ctx.logs)
    assert ctx.steps == [(i, 6) for i in range(1, 7)]
    info = probe(result.path)
    assert info["frames"] == 120 and info["fps"] == 24 and info["duration"] == 5


def pipeline_frames(engine: DiffusersEngine, plan, output_type: str = "pt") -> torch.Tensor:
    """What plain ``WanPipeline.__call__`` makes of ``plan`` with the engine's modules, called as diffusers'
    Wan docs call it (the seed in a CPU generator)."""
    with torch.inference_mode():
        return engine.pipe(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            generator=torch.Generator().manual_seed(plan.seed),
            output_type=output_type,
            max_sequence_length=32,
        ).frames[0]


def one_square_segment(engine: DiffusersEngine):
    plan = make_plan(request(resolution="360p", aspect_ratio="1:1"), engine.preset)
    return dataclasses.replace(plan, temporal="trim")  # one segment: chained ones run the i2v pipeline


def test_the_optimised_wan_loop_renders_the_frames_wan_pipeline_renders(tiny_wan):
    plan = one_square_segment(tiny_wan)
    ctx = RecordingContext()
    optimised = tiny_wan.generate(plan, ctx).video
    again = tiny_wan.generate(plan, RecordingContext()).video  # the negative prompt now from the cache

    reference = pipeline_frames(tiny_wan, plan)
    assert optimised.shape == reference.shape == (plan.gen_frames, 3, plan.gen_height, plan.gen_width)
    assert (optimised - reference).abs().max() < 1e-4
    assert torch.equal(optimised, again)
    assert ctx.steps == [(i, plan.steps) for i in range(1, plan.steps + 1)]


def test_the_optimised_loop_denoises_ti2v_to_the_latents_wan_pipeline_denoises_to():
    # Latents, not frames: tiny-wan-ti2v's random VAE blows the batched forward's 5e-7 rounding up to 0.07
    # on a few frames, while tiny-wan's keeps it under 1e-4 (test above).
    engine = DiffusersEngine(get_preset("tiny-wan-ti2v"), EngineOptions(device="cpu"))
    engine.load()
    plan = one_square_segment(engine)
    with torch.inference_mode():
        optimised = engine.model.latents(plan, None)[0]
    reference = pipeline_frames(engine, plan, output_type="latent")
    assert ((optimised - reference).norm() / reference.norm()) < 1e-5


def save_tiny_lora(folder, seed: int) -> tuple[str, torch.Tensor]:
    """A random rank-4 LoRA for tiny-wan's attention projections: its file and block 0's ``to_q`` delta."""
    from diffusers import WanPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    source = tiny_pipeline("tiny-wan").transformer
    torch.manual_seed(seed)
    source.add_adapter(
        LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False)
    )
    state = get_peft_model_state_dict(source)
    WanPipeline.save_lora_weights(folder, transformer_lora_layers=state)
    delta = state["blocks.0.attn1.to_q.lora_B.weight"] @ state["blocks.0.attn1.to_q.lora_A.weight"]
    return "pytorch_lora_weights.safetensors", delta


def test_a_lora_variant_preset_fuses_its_lora_at_load_and_changes_the_frames(tiny_wan, monkeypatch, tmp_path):
    weight_name, delta = save_tiny_lora(tmp_path, seed=3)
    variant = presets.Variant(
        "tiny-wan-turbo", "tiny-wan", 4, 5.0, "test", lora_repo=str(tmp_path), lora_files=(weight_name,)
    )
    engine = variant_engine(monkeypatch, variant)

    to_q = engine.pipe.transformer.blocks[0].attn1.to_q
    assert type(to_q) is torch.nn.Linear  # fused: no adapter layers at run time
    assert torch.allclose(
        to_q.weight, tiny_wan.pipe.transformer.blocks[0].attn1.to_q.weight + delta, atol=1e-6
    )
    plan = make_plan(request(resolution="360p", aspect_ratio="1:1"), engine.preset)
    assert not torch.allclose(
        engine.generate(plan, RecordingContext()).video,
        tiny_wan.generate(plan, RecordingContext()).video,
        atol=1e-3,
    )


def test_a_first_block_cache_variant_preset_is_exact_at_threshold_zero(tiny_wan, monkeypatch):
    variant = presets.Variant("tiny-wan-fbc", "tiny-wan", 4, 5.0, "test", first_block_cache=0.0)
    engine = variant_engine(monkeypatch, variant)

    assert engine.pipe.transformer.is_cache_enabled
    plan = make_plan(request(resolution="360p", aspect_ratio="1:1"), engine.preset)
    cached = engine.generate(plan, RecordingContext()).video
    assert torch.allclose(cached, tiny_wan.generate(plan, RecordingContext()).video, atol=1e-5)


def test_the_wan_vae_runs_in_float32_unless_bf16_is_chosen_and_only_on_cuda(tmp_path):
    from framecast.engine.families.wan import WanFamily

    with pytest.raises(ConfigError, match="FRAMECAST_VAE_DTYPE='float16'"):
        EngineOptions(device="cpu", vae_dtype="float16")

    folder = save_tiny("tiny-wan", tmp_path / "saved")
    # The family loads a bf16 model (as on CUDA) with its VAE in float32, its authors' choice.
    family = WanFamily(get_preset("tiny-wan"))
    family.load(folder, torch.bfloat16)
    assert family.pipe.transformer.dtype == torch.bfloat16 and family.pipe.vae.dtype == torch.float32

    engine = DiffusersEngine(
        get_preset("tiny-wan"), EngineOptions(device="cpu", model_path=str(folder), vae_dtype="bfloat16")
    )
    engine.load()  # through from_pretrained: on the CPU everything stays float32, the bf16 VAE included
    assert engine.pipe.vae.dtype == torch.float32
