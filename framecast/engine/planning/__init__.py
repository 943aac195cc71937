"""Planning: from a request and a preset to an exact ``RenderPlan`` (sizes, frames, shots, buckets). No torch."""

from framecast.engine.planning.plan import (
    PlanStage,
    RenderPlan,
    Shot,
    audio_mode,
    draw_seed,
    generation_frames,
    make_plan,
    merge_negative,
    shot_plans,
    shots_output,
    summary,
    with_prompts,
)
from framecast.engine.planning.sizes import OUTPUT_SIZES, generation_size
from framecast.engine.planning.upscale import SizePlan, UpscalerSpec, plan_size

__all__ = [
    "OUTPUT_SIZES",
    "PlanStage",
    "RenderPlan",
    "Shot",
    "SizePlan",
    "UpscalerSpec",
    "audio_mode",
    "draw_seed",
    "generation_frames",
    "generation_size",
    "make_plan",
    "merge_negative",
    "plan_size",
    "shot_plans",
    "shots_output",
    "summary",
    "with_prompts",
]
