"""The LTX-2 family on diffusers' ``LTX2Pipeline``: video with a joint audio track, called as its docs show."""

from __future__ import annotations

from typing import Any

from framecast.engine.families.base import Family, GeneratedClip, Steps
from framecast.engine.families.ltx2 import build
from framecast.engine.planning.plan import RenderPlan

__all__ = ["Ltx2Family"]


class Ltx2Family(Family):
    name = "ltx2"
    keywords = ("ltx",)
    levers = frozenset({"attention", "compile", "fp8"})
    blocks = "transformer_blocks"
    # Its text connectors and cross-attention pass padding masks, and diffusers' backend choice is process-wide:
    # the attention probe must refuse kernels that take no mask (native flash).
    masked_attention = True

    def tiny(self) -> Any:
        return build.tiny()

    def call_kwargs(self, plan: RenderPlan, steps: Steps | None, segment: int = 0) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, steps, segment)
        # Condition on the rate the frames will be shown at, so the joint audio spans the whole duration even
        # when a long clip is stretched.
        kwargs["frame_rate"] = plan.fps if plan.temporal == "trim" else plan.gen_frames / plan.duration
        return kwargs

    def generate(self, plan: RenderPlan, steps: Steps) -> GeneratedClip:
        output = self.pipe(**self.call_kwargs(plan, steps))
        if plan.audio != "joint":
            return GeneratedClip(output.frames[0])
        rate = int(self.pipe.vocoder.config.output_sampling_rate)
        return GeneratedClip(output.frames[0], output.audio[0].float().cpu().numpy(), rate)
