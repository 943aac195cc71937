"""DMD sampling (families/wan/dmd.py) for step-distilled checkpoints: the update, the loop, and a chained render
with it."""

from __future__ import annotations

import pytest
import torch

from framecast.engine import presets
from framecast.engine.families.wan import build
from framecast.engine.families.wan import loop as wan_loop
from framecast.engine.families.wan.dmd import DMDScheduler
from framecast.engine.planning import make_plan
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext, variant_engine

FASTWAN = (1000, 757, 522)
CPU = torch.device("cpu")


def test_the_schedule_is_the_fixed_timesteps_with_sigma_t_over_1000_and_a_final_zero():
    scheduler = DMDScheduler(FASTWAN)
    scheduler.set_timesteps(3, device=CPU)
    assert scheduler.timesteps.tolist() == [1000.0, 757.0, 522.0]
    assert torch.allclose(scheduler.sigmas, torch.tensor([1.0, 0.757, 0.522, 0.0]))


def test_a_pipeline_asking_for_another_step_count_is_refused_not_silently_resampled():
    with pytest.raises(ValueError, match="exactly 3 steps"):
        DMDScheduler(FASTWAN).set_timesteps(50)
    for bad in ((), (522, 757, 1000), (2000, 10), (1000, 0)):
        with pytest.raises(ValueError):
            DMDScheduler(bad)


def test_each_step_predicts_x0_and_renoises_it_with_fresh_noise_and_the_last_step_returns_x0():
    scheduler = DMDScheduler(FASTWAN)
    scheduler.set_timesteps(3)
    gen = torch.Generator().manual_seed(0)
    x, v = torch.randn(1, 4, 3, 8, 8, generator=gen), torch.randn(1, 4, 3, 8, 8, generator=gen)
    scheduler.noise_generator = torch.Generator().manual_seed(7)  # the pipeline passes no generator
    expected_noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))

    first = scheduler.step(v, scheduler.timesteps[0], x, return_dict=False)[0]
    x0 = x - 1.0 * v
    assert torch.allclose(first, 0.243 * x0 + 0.757 * expected_noise, atol=1e-6)
    second = scheduler.step(v, scheduler.timesteps[1], first, return_dict=False)[0]
    assert not torch.allclose(second, 0.478 * (first - 0.757 * v) + 0.522 * expected_noise)  # fresh noise
    last = scheduler.step(v, scheduler.timesteps[2], second, return_dict=False)[0]
    assert torch.allclose(last, second - 0.522 * v, atol=1e-6)


def reference_dmd(pipe, prompt_embeds: torch.Tensor, seed: int, size: dict) -> torch.Tensor:
    """DMD written out from its definition, calling the transformer as WanPipeline does for TI2V (one
    timestep per token)."""
    gen = torch.Generator().manual_seed(seed)
    channels = pipe.transformer.config.in_channels
    x = pipe.prepare_latents(
        1, channels, size["height"], size["width"], size["num_frames"], torch.float32, CPU, gen
    )
    patch = pipe.transformer.config.patch_size
    tokens = (x.shape[2] // patch[0]) * (x.shape[3] // patch[1]) * (x.shape[4] // patch[2])
    for i, t in enumerate(FASTWAN):
        velocity = pipe.transformer(x, torch.full((1, tokens), float(t)), prompt_embeds, return_dict=False)[0]
        x0 = x - t / 1000 * velocity
        if i + 1 == len(FASTWAN):
            return x0
        sigma_next = FASTWAN[i + 1] / 1000
        x = (1 - sigma_next) * x0 + sigma_next * torch.randn(x.shape, generator=gen)
    raise AssertionError("unreachable")


def test_wan_loop_with_the_dmd_scheduler_is_the_dmd_algorithm_on_a_ti2v_model():
    torch.set_num_threads(2)
    pipe = build.tiny("wan2.2-ti2v-5b")
    pipe.scheduler = DMDScheduler(FASTWAN)
    size = {"height": 64, "width": 64, "num_frames": 9}
    positive, _ = wan_loop.encode_prompts(pipe, "a cat", "", guidance=False, device=CPU)
    with torch.no_grad():
        ours = wan_loop.denoise(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=None,
            num_inference_steps=3,
            guidance_scale=1.0,
            generator=torch.Generator().manual_seed(5),
            **size,
        )
        reference = reference_dmd(pipe, positive, 5, size)
    assert float((ours - reference).norm() / reference.norm()) < 1e-5


def test_a_dmd_variant_renders_every_chained_segment_with_dmd_and_the_same_seed_gives_the_same_video(
    monkeypatch,
):
    variant = presets.Variant("tiny-wan-ti2v-turbo", "tiny-wan-ti2v", 3, 1.0, "test", dmd_timesteps=FASTWAN)
    engine = variant_engine(monkeypatch, variant)
    assert isinstance(engine.pipe.scheduler, DMDScheduler)
    seen: list[float] = []

    def record_timestep(module, args, kwargs):
        timestep = kwargs["timestep"] if "timestep" in kwargs else args[1]
        seen.append(float(timestep.max()))  # image-to-video holds its first frame at timestep 0

    engine.pipe.transformer.register_forward_pre_hook(record_timestep, with_kwargs=True)
    request = TextToVideoInput.model_validate({"prompt": "a red fox", "seed": 4, "resolution": "360p"})
    plan = make_plan(request, engine.preset)
    assert plan.segments == 3 and plan.steps == 3
    ctx = RecordingContext()
    first = engine.generate(plan, ctx).video
    assert seen == [1000.0, 757.0, 522.0] * 3  # one forward per step: no CFG
    assert ctx.steps == [(i, 9) for i in range(1, 10)]
    assert any("negative prompt has no effect" in line for line in ctx.logs)

    torch.manual_seed(123)  # the global RNG must not matter: every draw comes from the seed
    again = engine.generate(plan, RecordingContext()).video
    assert torch.equal(first, again)
    other = engine.generate(
        make_plan(request.model_copy(update={"seed": 5}), engine.preset), RecordingContext()
    )
    assert not torch.allclose(first, other.video, atol=1e-3)


def test_a_fastwan_style_folder_loads_through_the_real_loading_path_with_the_dmd_sampler(
    monkeypatch, tmp_path
):
    """FastWan's repo names FastVideo's pipeline class (WanDMDPipeline) in model_index.json; the engine loads it
    as diffusers' WanPipeline, with DMD in place of the scheduler the folder names."""
    import json

    from framecast.engine.families import save_tiny

    folder = save_tiny("tiny-wan-ti2v", tmp_path / "fastwan")
    index = json.loads((folder / "model_index.json").read_text())
    index.update({"_class_name": "WanDMDPipeline", "_diffusers_version": "0.35.0.dev0"})
    assert index["scheduler"] == ["diffusers", "UniPCMultistepScheduler"]  # the folder's own, not DMD
    (folder / "model_index.json").write_text(json.dumps(index))

    variant = presets.Variant("tiny-wan-ti2v-turbo", "tiny-wan-ti2v", 3, 1.0, "test", dmd_timesteps=FASTWAN)
    engine = variant_engine(monkeypatch, variant, model_path=str(folder))
    assert type(engine.pipe).__name__ == "WanPipeline" and engine.pipe.config.expand_timesteps
    assert isinstance(engine.pipe.scheduler, DMDScheduler)
    request = TextToVideoInput.model_validate({"prompt": "a red fox", "seed": 4, "resolution": "360p"})
    plan = make_plan(request, engine.preset)
    clip = engine.generate(plan, RecordingContext())
    assert clip.video.shape[0] == plan.gen_frames + (plan.segments - 1) * (plan.gen_frames - 1)
