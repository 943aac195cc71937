"""The generation shapes a compiled transformer serves, so that no request waits minutes for a recompile.

A regionally compiled Wan transformer (``FRAMECAST_COMPILE=1``) is specialised to its input shape: a new one
recompiles the block graph, tens of seconds to minutes on a cold cache. The shapes a preset can be asked for are
few, because planning keeps the model's native pixel count:

- size: one or two generation sizes per aspect ratio (upscale.py: the native one, and one a few percent off it
  that crops to an output without resampling, e.g. the 5B's 1280x736 for 720p), so 5 to 10 sizes;
- frames: single clips always generate the model's longest clip (every PixVerse duration reaches it), but
  multi-clip shots are any length. With compile on, a shot's frame count is rounded up to one of
  ``PARTS`` buckets (a quarter, half, three quarters or all of the longest clip), and the extra frames are cut
  off again: up to a quarter more compute for that shot instead of a stall. A chunked model
  (``Preset.frame_chunk``) denoises one chunk shape at every length, so it needs no frame buckets.

``warmup_shapes`` lists the (width, height, frames) a worker compiles at start: ``default`` (the default
request's: 720p 16:9), ``all`` (every size and bucket) or a list of aspect ratios (``16:9,9:16``: their sizes).
"""

from __future__ import annotations

import dataclasses

from framecast.engine.planning.frames import longest_on_rule, on_rule
from framecast.engine.planning.plan import RenderPlan
from framecast.engine.planning.sizes import OUTPUT_SIZES
from framecast.engine.planning.upscale import UpscalerSpec, plan_size
from framecast.engine.presets import Preset
from framecast.errors import ConfigError
from framecast.schema import AspectRatio, Resolution

__all__ = ["PARTS", "bucketed", "frame_buckets", "warmup_shapes"]

PARTS = 4
WARMUP_CHOICES = ("default", "all")


def frame_buckets(preset: Preset) -> tuple[int, ...]:
    """Frame counts a compiled preset generates: fractions 1/PARTS .. 1 of its longest clip, on its frame rule.
    A chunked model denoises the same chunk shape whatever the clip's length, so its one bucket is any length
    (named by its longest)."""
    step, chunk = preset.frame_step, preset.frame_chunk
    longest = longest_on_rule(preset.max_frames, step, chunk)
    if chunk:
        return (longest,)
    buckets = {on_rule(1 + (longest - 1) * part / PARTS, step) for part in range(1, PARTS + 1)}
    return tuple(sorted(buckets))


def bucketed(plan: RenderPlan, preset: Preset) -> RenderPlan:
    """``plan`` generating the smallest bucket of frames that holds its own; the output frames do not change
    (a "trim" plan keeps its first ``plan.frames``). Chained and stretched plans already use the longest clip,
    and a chunked model's plan already has the one shape it compiles to."""
    if plan.temporal != "trim" or preset.frame_chunk:
        return plan
    gen_frames = next(f for f in frame_buckets(preset) if f >= plan.gen_frames)
    return dataclasses.replace(plan, gen_frames=gen_frames)


def warmup_shapes(
    preset: Preset, which: str, upscaler: UpscalerSpec | None = None
) -> list[tuple[int, int, int]]:
    """(width, height, frames) to compile at worker start for ``which`` (module docstring); ``upscaler`` is the
    one the engine offers planning, which can move a generation size."""
    resolutions = list(Resolution)
    if which == "default":
        aspects, frames = [AspectRatio.r16_9], [frame_buckets(preset)[-1]]
        resolutions = [Resolution.p720]
    elif which == "all":
        aspects, frames = list(AspectRatio), list(frame_buckets(preset))
    else:
        try:
            aspects = [AspectRatio(part.strip()) for part in which.split(",") if part.strip()]
        except ValueError:
            aspects = []
        if not aspects:
            choices = ", ".join([*WARMUP_CHOICES, *(a.value for a in AspectRatio)])
            raise ConfigError(f"FRAMECAST_COMPILE_WARMUP={which!r}: use {choices}, or a comma-separated list")
        frames = [frame_buckets(preset)[-1]]
    shapes = []
    for aspect in aspects:
        for resolution in resolutions:
            size = plan_size(preset, *OUTPUT_SIZES[resolution][aspect], upscaler)
            shapes += [
                (size.width, size.height, f) for f in frames if (size.width, size.height, f) not in shapes
            ]
    return shapes
