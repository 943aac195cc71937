"""Long clips on the Wan family by overlapping windows denoised together (loop.py ``windows``), on tiny models of
the real classes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families.wan import build
from framecast.engine.families.wan import loop as wan_loop
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext, decode_frames

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def pipe():
    built = build.tiny("wan2.1-t2v-1.3b")
    built.set_progress_bar_config(disable=True)
    return built


def latents(pipe, frames: int, windows=(), window_frames: int = 0, steps: int = 3) -> torch.Tensor:
    positive, negative = wan_loop.encode_prompts(pipe, "a cat", "blurry", guidance=True, device=CPU)
    return wan_loop.denoise(
        pipe,
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        height=32,
        width=32,
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
        windows=windows,
        window_frames=window_frames,
    )


def test_window_weights_cross_fade_and_sum_to_one_wherever_windows_overlap():
    starts, window = [0, 10, 20], 21
    weights = wan_loop.window_weights(starts, window)
    total = torch.zeros(41)
    for start, weight in zip(starts, weights, strict=True):
        total[start : start + window] += weight
    assert torch.allclose(total[:10], torch.ones(10)) and torch.allclose(total[31:], torch.ones(10))
    assert (total[10:31] > 0.99).all() and (total[10:31] < 1.5).all()  # three windows meet at latent 20
    assert weights[0][0] == 1 and weights[0][-1] < weights[0][10] and weights[1][0] < weights[1][10]


def test_one_window_covering_the_clip_is_the_plain_loop(pipe):
    plain = latents(pipe, 17)
    assert torch.equal(latents(pipe, 17, windows=(0,), window_frames=17), plain)


def test_each_window_is_denoised_on_its_own_slice_of_the_clip_every_step(pipe):
    seen: list[tuple[int, ...]] = []
    hook = pipe.transformer.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    try:
        long = latents(pipe, 33, windows=(0, 8, 16), window_frames=17)
    finally:
        hook.remove()
    # 3 steps x 3 windows, each a batch of 2 (CFG) over the window's 5 latent frames of the 9 of the clip
    assert seen == [(2, 16, 5, 4, 4)] * 9
    assert long.shape == (1, 16, 9, 4, 4) and torch.isfinite(long).all()
    # a clip of windows is not a repeat of one window: the last frames differ from the first ones
    assert not torch.allclose(long[:, :, :5], long[:, :, 4:], atol=1e-3)


def test_windows_that_do_not_tile_the_clip_are_refused(pipe):
    with pytest.raises(ValueError, match="do not tile"):
        latents(pipe, 33, windows=(0, 8), window_frames=17)


def test_an_8_second_clip_on_tiny_wan_is_one_windowed_generation_of_exactly_its_frames(tmp_path):
    engine = DiffusersEngine(get_preset("tiny-wan"), EngineOptions(device="cpu"))
    request = TextToVideoInput(
        prompt="a red fox", resolution="360p", aspect_ratio="1:1", duration="8", seed=2
    )
    plan = make_plan(request, engine.preset)
    assert (plan.temporal, plan.gen_frames, plan.windows) == ("window", 129, (0, 48))
    ctx = RecordingContext()
    result = engine.render(request, ctx, tmp_path / "long.mp4")
    assert decode_frames(result.path).shape[0] == result.frames == 128
    assert ctx.steps == [(i, plan.steps) for i in range(1, plan.steps + 1)]  # one pass, all windows per step
    assert any("2 overlapping windows" in line for line in ctx.logs)
    assert any(line.startswith("continuity: mean colour per second") for line in ctx.logs)
    # The operator's opt-in for speed: one clip, slowed, and said so.
    fast = DiffusersEngine(get_preset("tiny-wan"), EngineOptions(device="cpu", long_clips="stretch"))
    fast_ctx = RecordingContext()
    stretched = fast.render(request, fast_ctx, tmp_path / "fast.mp4")
    assert decode_frames(stretched.path).shape[0] == 128
    assert any("motion slowed" in line for line in fast_ctx.logs)


def test_the_windowed_clip_is_what_the_loop_denoises_for_the_plan(tiny_wan):
    request = TextToVideoInput(
        prompt="a red fox", resolution="360p", aspect_ratio="1:1", duration="8", seed=2
    )
    plan = make_plan(request, tiny_wan.preset)
    plan = dataclasses.replace(plan, steps=2)
    with torch.inference_mode():
        ours = tiny_wan.model.latents(plan, None)
    pipe = tiny_wan.pipe
    positive, negative = wan_loop.encode_prompts(
        pipe, plan.prompt, plan.negative_prompt, guidance=True, device=CPU, max_sequence_length=32
    )
    direct = wan_loop.denoise(
        pipe,
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        height=plan.gen_height,
        width=plan.gen_width,
        num_frames=plan.gen_frames,
        num_inference_steps=2,
        guidance_scale=plan.guidance_scale,
        generator=torch.Generator().manual_seed(plan.seed),
        windows=(0, 48),
        window_frames=81,
    )
    assert torch.allclose(ours, direct, atol=1e-6)
