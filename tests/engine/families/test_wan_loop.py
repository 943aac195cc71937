"""The Wan family's loop (families/wan/loop.py) against diffusers' WanPipeline, on tiny random-weight models of
the real classes (fp32, CPU)."""

from __future__ import annotations

import pytest
import torch

from framecast.engine.families.wan import build
from framecast.engine.families.wan import loop as wan_loop

CPU = torch.device("cpu")
SIZE = {"height": 64, "width": 64, "num_frames": 9}


@pytest.fixture(scope="module")
def pipes():
    torch.set_num_threads(2)
    built = {}
    for name in ("wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b"):
        pipe = build.tiny(name)
        pipe.set_progress_bar_config(disable=True)
        built[name] = pipe
    return built


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def pipeline_latents(pipe, steps: int = 4, **kwargs) -> torch.Tensor:
    out = pipe(
        "a cat",
        negative_prompt="blurry",
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
        **{**SIZE, **kwargs},
    )
    return out.frames


def loop_latents(pipe, steps: int = 4, options=wan_loop.LoopOptions(), **kwargs) -> torch.Tensor:
    positive, negative = wan_loop.encode_prompts(pipe, "a cat", "blurry", guidance=True, device=CPU)
    return wan_loop.denoise(
        pipe,
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(0),
        options=options,
        **{**SIZE, **kwargs},
    )


def test_batched_cfg_matches_wan_pipeline(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    assert rel_err(loop_latents(pipe), pipeline_latents(pipe)) < 1e-4


def test_sequential_cfg_is_the_pipeline_computation(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    options = wan_loop.LoopOptions(batched_cfg=False)
    assert rel_err(loop_latents(pipe, options=options), pipeline_latents(pipe)) < 1e-6


@pytest.mark.parametrize("uniform", [True, False])
def test_ti2v_expand_timesteps_matches_wan_pipeline(pipes, uniform):
    pipe = pipes["wan2.2-ti2v-5b"]
    assert pipe.config.expand_timesteps
    options = wan_loop.LoopOptions(batched_cfg=True, uniform_timesteps=uniform)
    assert rel_err(loop_latents(pipe, options=options), pipeline_latents(pipe)) < 1e-4


def _block_shapes(pipe, run) -> tuple[list[tuple], int]:
    """The first block's (hidden_states, temb) input shapes per forward, and how many tensors autograd saved."""
    shapes, saved = [], []
    block = pipe.transformer.blocks[0]
    hook = block.register_forward_pre_hook(lambda m, args: shapes.append((args[0].shape, args[2].shape)))
    try:
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
            out = run()
    finally:
        hook.remove()
    assert not out.requires_grad
    return shapes, len(saved)


@pytest.mark.parametrize("name", ["wan2.2-ti2v-5b", "wan2.1-t2v-1.3b"])
def test_framecast_combination_with_trainable_weights_matches_the_pipeline_without_autograd(pipes, name):
    """What the bench's framecast arm runs: batched CFG + uniform timesteps, at 256 tokens, on weights that
    require grad (as from_pretrained leaves them).

    Regression: weights that required grad made the loop (then without no_grad) record every block's
    activations for backward: 135 GiB on an H200 at 1280x704x121, while each lever alone fitted in 33 GiB.
    """
    pipe = pipes[name]
    size = {"height": 256, "width": 256, "num_frames": 13}
    plain_shapes, plain_saved = _block_shapes(pipe, lambda: pipeline_latents(pipe, steps=2, **size))
    pipe.transformer.requires_grad_(True)
    try:
        ours_shapes, ours_saved = _block_shapes(
            pipe, lambda: loop_latents(pipe, steps=2, options=wan_loop.LoopOptions(), **size)
        )
        ours = loop_latents(pipe, steps=2, **size)
    finally:
        pipe.transformer.requires_grad_(False)
    assert plain_saved == ours_saved == 0
    # One forward of batch 2 per step where the pipeline runs two of batch 1; same tokens and width per row.
    assert len(ours_shapes) * 2 == len(plain_shapes)
    (hidden, temb), (plain_hidden, plain_temb) = ours_shapes[0], plain_shapes[0]
    assert plain_hidden[1] >= 256
    assert hidden == (2, *plain_hidden[1:])
    # The modulation input is per row with uniform timesteps (TI2V), never larger than the pipeline's per token.
    assert temb.numel() <= 2 * plain_temb.numel()
    if pipe.config.expand_timesteps:
        assert temb == (2, 6, plain_hidden[2]) and plain_temb == (1, plain_hidden[1], 6, plain_hidden[2])
    assert rel_err(ours, pipeline_latents(pipe, steps=2, **size)) < 1e-4


def test_denoise_records_no_autograd_graph_even_with_trainable_weights(pipes):
    # Weights from from_pretrained require grad; WanPipeline.__call__ is no_grad, and so is the loop.
    pipe = pipes["wan2.1-t2v-1.3b"]
    pipe.transformer.requires_grad_(True)
    try:
        _, saved = _block_shapes(pipe, lambda: loop_latents(pipe, steps=1))
    finally:
        pipe.transformer.requires_grad_(False)
    assert saved == 0


def test_a14b_switches_to_the_second_expert_at_the_boundary_like_the_pipeline(pipes):
    pipe = pipes["wan2.2-t2v-a14b"]
    calls = {"transformer": 0, "transformer_2": 0}
    hooks = [
        getattr(pipe, name).register_forward_hook(lambda *a, n=name: calls.__setitem__(n, calls[n] + 1))
        for name in calls
    ]
    try:
        ours = loop_latents(pipe, steps=8, guidance_scale_2=3.0)
        high, low = calls["transformer"], calls["transformer_2"]
        reference = pipeline_latents(pipe, steps=8, guidance_scale_2=3.0)
    finally:
        for hook in hooks:
            hook.remove()
    assert high > 0 and low > 0 and high + low == 8  # one batched forward per step
    assert calls["transformer"] - high == 2 * high  # the pipeline runs two forwards per step
    assert rel_err(ours, reference) < 1e-4


def test_same_seed_same_latents_and_another_seed_differs(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    first, second = loop_latents(pipe), loop_latents(pipe)
    positive, negative = wan_loop.encode_prompts(pipe, "a cat", "blurry", guidance=True, device=CPU)
    other = wan_loop.denoise(
        pipe,
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        num_inference_steps=4,
        guidance_scale=5.0,
        generator=torch.Generator().manual_seed(1),
        **SIZE,
    )
    assert torch.equal(first, second)
    assert rel_err(other, first) > 0.1


def test_negative_prompt_is_encoded_once_per_cache(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    cache = wan_loop.NegativePromptCache()
    seen = []
    hook = pipe.text_encoder.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    try:
        for prompt in ("a cat", "a dog", "a bird"):
            wan_loop.encode_prompts(pipe, prompt, "blurry", guidance=True, device=CPU, negative_cache=cache)
    finally:
        hook.remove()
    assert len(seen) == 4  # three prompts, one negative
    assert len(cache) == 1


def test_without_guidance_one_forward_per_step_and_no_negative(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    positive, negative = wan_loop.encode_prompts(pipe, "a cat", "blurry", guidance=False, device=CPU)
    rows = []
    hook = pipe.transformer.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    try:
        wan_loop.denoise(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
            num_inference_steps=3,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(0),
            **SIZE,
        )
    finally:
        hook.remove()
    assert negative is None
    assert rows == [1, 1, 1]


def test_step_callback_sees_every_step_and_can_stop_the_loop(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    seen = []

    class Stop(Exception):
        pass

    def on_step(i, total, latents):
        seen.append((i, total, latents.shape))
        if i == 1:
            raise Stop

    with pytest.raises(Stop):
        loop_latents(pipe, steps=6, on_step=on_step)
    assert [(i, total) for i, total, _ in seen] == [(0, 6), (1, 6)]


def test_max_steps_runs_the_first_steps_of_the_full_schedule(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    partial = loop_latents(pipe, steps=6, max_steps=2)
    stamps = []
    loop_latents(pipe, steps=6, on_step=lambda i, total, latents: stamps.append(latents.clone()))
    assert rel_err(partial, stamps[1]) < 1e-6


def test_sizes_off_the_model_grid_are_refused(pipes):
    pipe = pipes["wan2.1-t2v-1.3b"]
    with pytest.raises(ValueError, match="multiple"):
        loop_latents(pipe, height=72)
    with pytest.raises(ValueError, match="4k\\+1"):
        loop_latents(pipe, num_frames=10)


def test_decode_latents_gives_frames_of_the_requested_size(pipes):
    pipe = pipes["wan2.2-ti2v-5b"]
    video = wan_loop.decode(pipe, loop_latents(pipe, steps=2))
    assert video.shape == (1, 9, 3, 64, 64)
