"""Every lever a family claims (``Family.levers``) works on that family's tiny model: exact levers leave its frames
as they were, quality-changing ones change them a little and stay finite. A new family is checked by this file
without a line more."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from framecast.engine.families import all_families
from framecast.engine.families.base import Family, Steps
from framecast.engine.planning import make_plan
from framecast.engine.presets import VARIANTS, all_presets
from framecast.engine.speed import attention, cache, compile, distill, fp8, vae
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext

CASES = [
    (family.name, lever)
    for family in sorted(all_families(), key=lambda f: f.name)
    for lever in sorted(family.levers)
]


def tiny_model(family_name: str) -> tuple[Family, object]:
    """The family's first tiny preset, loaded, and a short plan (9 frames) on it."""
    from framecast.engine.families import get_family

    preset = next(p for p in all_presets() if p.tiny and p.family == family_name and not p.variant)
    model = get_family(family_name)(preset, VARIANTS.get(preset.variant))
    model.load(None, torch.float32)
    request = TextToVideoInput(prompt="a red fox in the snow", resolution="360p", aspect_ratio="1:1", seed=3)
    plan = make_plan(request, preset)
    frames = 2 * preset.frame_step + 1
    return model, dataclasses.replace(plan, temporal="trim", gen_frames=frames, frames=frames - 1)


def frames_of(model: Family, plan) -> torch.Tensor:
    with torch.inference_mode():
        return model.generate(plan, Steps(RecordingContext(), 0, plan.steps)).video.float()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize(("family_name", "lever"), CASES)
def test_each_lever_a_family_claims_works_on_its_tiny_model(family_name: str, lever: str, tmp_path):
    model, plan = tiny_model(family_name)
    before = frames_of(model, plan)
    modules = model.modules()
    if lever == "attention":
        attention.apply(modules, attention.AttentionOptions(time_tokens=64))
        try:
            assert torch.allclose(frames_of(model, plan), before, atol=1e-5)
        finally:  # diffusers' backend choice is process-wide: leave the next test the default
            for expert in modules.experts:
                attention.set_attention_backend(expert, "native")
    elif lever == "compile":
        torch._dynamo.reset()
        try:
            # "eager" traces every block with fullgraph=True (a graph break fails) without inductor's build time.
            compile.apply(modules, compile.CompileOptions(backend="eager"))
            assert torch.allclose(frames_of(model, plan), before, atol=1e-5)
        finally:
            torch._dynamo.reset()
    elif lever == "fp8":
        fp8.apply(modules, fp8.Fp8Options())
        assert any(isinstance(m, fp8.Fp8Linear) for e in modules.experts for m in e.modules())
        after = frames_of(model, plan)
        assert torch.isfinite(after).all() and 0 < rel_err(after, before) < 0.5
    elif lever == "vae_bf16":
        vae.apply(modules, vae.VaeOptions())
        assert modules.vae.dtype == torch.bfloat16
        after = frames_of(model, plan)
        assert torch.isfinite(after).all() and rel_err(after, before) < 0.1
    elif lever == "first_block_cache":
        cache.apply(modules, cache.CacheOptions(threshold=0.0))  # at 0 nothing is reused: exact
        assert all(e.is_cache_enabled for e in modules.experts)
        assert torch.allclose(frames_of(model, plan), before, atol=1e-5)
    elif lever == "step_distillation":
        folder, files = model.tiny_loras(len(modules.experts))
        distill.apply(modules, distill.DistillOptions("tiny-turbo", folder, files))
        after = frames_of(model, plan)
        assert torch.isfinite(after).all() and rel_err(after, before) > 1e-4  # the LoRAs changed the weights
    else:
        pytest.fail(f"no check for lever {lever!r}: add one here")
