"""The HunyuanVideo 1.5 family on diffusers' ``HunyuanVideo15Pipeline`` (text-to-video, 480p and 720p).

The pipeline is called as its authors' and diffusers' docs call it, with what this line does differently:
- guidance is the ``guider`` component, not a call argument: a fresh guider with the plan's scale is set before
  every call (``pipe.guider.new(guidance_scale=...)``, as diffusers' docs show; a guider reused across calls keeps
  the last call's state);
- the pipeline has no ``callback_on_step_end``: steps are reported (and a stop honoured) from the scheduler's
  ``step``, which its loop calls once per denoising step, after guidance;
- it floors sizes and frame counts off its grid without a word, so a plan off the grid is refused here;
- its VAE always tiles: untiled, the mid-block's causal mask alone is ~5 GB at 480p and ~25 GB at 720p.

It does not continue a clip from a frame: that needs the separate image-to-video transformer and a SigLIP encoder
(``docs/models.md``), so its presets make long clips as shots of one subject.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.base import Family, GeneratedClip, Steps
from framecast.engine.families.hunyuan15 import build
from framecast.engine.planning.plan import RenderPlan
from framecast.errors import ConfigError

__all__ = ["HunyuanVideo15Family", "check_grid", "reporting_steps"]


class HunyuanVideo15Family(Family):
    name = "hunyuan15"
    keywords = ("hunyuan",)
    levers = frozenset({"attention", "compile", "fp8"})
    # HunyuanVideo15AttnProcessor2_0 passes a (batch, 1, tokens, tokens) mask in every block.
    masked_attention = True
    blocks = "transformer_blocks"

    # 1. Building
    def load(self, folder: Path | None, dtype: torch.dtype) -> None:
        super().load(folder, dtype)
        # As every example of the authors and of diffusers does (Tencent README L380, diffusers docs).
        self.pipe.vae.enable_tiling()

    def tiny(self) -> Any:
        return build.tiny(self.preset.architecture)

    # 2. Rendering
    def call_kwargs(self, plan: RenderPlan, steps: Steps | None, segment: int = 0) -> dict[str, Any]:
        # No guidance_scale and no callback_on_step_end: the pipeline takes neither (``_call`` does both).
        kwargs = super().call_kwargs(plan, None, segment)
        del kwargs["guidance_scale"]
        return kwargs

    def generate(self, plan: RenderPlan, steps: Steps) -> GeneratedClip:
        return GeneratedClip(self._call(plan, steps).frames[0])

    def warm_up_step(self, plan: RenderPlan, continuation: bool) -> None:
        # One step (both passes when CFG is on), then the remaining steps are skipped and nothing is decoded.
        def interrupt(index: int) -> None:
            self.pipe._interrupt = True

        self._call(plan, interrupt, output_type="latent")

    def _call(self, plan: RenderPlan, on_step: Callable[[int], None], **overrides: Any) -> Any:
        """The pipeline called for ``plan`` with a fresh guider at its scale, ``on_step(i)`` after each step."""
        check_grid(self.pipe, plan)
        self.pipe.guider = self.pipe.guider.new(guidance_scale=plan.guidance_scale)
        with reporting_steps(self.pipe.scheduler, on_step):
            return self.pipe(**{**self.call_kwargs(plan, None), **overrides})


def check_grid(pipe: Any, plan: RenderPlan) -> None:
    """Refuse a generation size or frame count the pipeline would silently floor (72 px to 64, 10 frames to 9)."""
    spatial = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size
    temporal = pipe.vae_scale_factor_temporal * pipe.transformer.config.patch_size_t
    if plan.gen_width % spatial or plan.gen_height % spatial or (plan.gen_frames - 1) % temporal:
        raise ConfigError(
            f"{plan.preset}: {plan.gen_width}x{plan.gen_height}, {plan.gen_frames} frames is off the model's grid "
            f"(sides multiples of {spatial}, frame counts {temporal}k+1); the preset's size_multiple or "
            "frame_step is wrong"
        )


@contextmanager
def reporting_steps(scheduler: Any, on_step: Callable[[int], None]) -> Iterator[None]:
    """Call ``on_step(i)`` after the scheduler's ``i``-th ``step`` while inside; what it raises leaves the
    denoising loop at once."""
    step = scheduler.step
    done = 0

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        out = step(*args, **kwargs)
        on_step(done)
        done += 1
        return out

    scheduler.step = counted
    try:
        yield
    finally:
        del scheduler.step  # the class's own method again
