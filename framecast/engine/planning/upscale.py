"""The generation size and the upscaler of a plan: which size the model draws at, and what brings it to the output.

The rule (docs/models.md, "Sizes and the upscaler"), for an output of W x H on a preset whose native size has
``N`` pixels, with the scales ``s`` of the learned upscaler offered (none when its weights are missing, or when
the model family upscales itself), tried in order ``1, s1, s2, ...`` (1: no upscaler):

1. the smallest size on the preset's size multiple whose output after ``x s`` covers W x H is used when its pixel
   count is within ``TOLERANCE`` of ``N``: the output is then a centre crop, with no resampling at all (the 5B's
   720p: 1280x736, cropped to 1280x720; the 1.3B's 1080p: 848x480, x2.25 to 1920x1088, cropped);
2. else the native size (``N`` pixels at the output's aspect, today's rule: ``sizes.generation_size``) is used
   when its output after ``x s`` covers W x H; the output is then downscaled (antialiased bicubic) and cropped.

So an output at or below the native pixel count never runs the upscaler, and an output above it runs the
smallest learned scale that covers it. When no scale covers it (only the tiny test models are that small), the
largest scale runs and the output mapping's bicubic does the rest; with no learned upscaler at all, the native
size is upscaled bicubically, as before the stage existed (``RenderPlan.upscaler == "bicubic"``).

The upscaler's output size is computed here as ``Kandinsky6SRPipeline`` computes it (sides on its VAE's
``snap``; the 2.25 route pre-upscales by 1.125, rounded to ``snap``, then doubles), and a scale is offered only
where the clip holds one of the model's trained tiles, which the pipeline requires. Pure: no torch, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from framecast.engine.planning.sizes import generation_size
from framecast.engine.presets import Preset

__all__ = ["TOLERANCE", "SizePlan", "UpscalerSpec", "plan_size", "upscaled_size"]

# "Within a few percent of the native pixel budget": the 5B's 1280x736 is 4.5 % above its 1280x704.
TOLERANCE = 0.05


@dataclass(frozen=True)
class UpscalerSpec:
    """What planning needs to know of a learned upscaler, without loading it (stages/upscale.py builds it)."""

    name: str  # what the plan and the output call it, and ``framecast models pull`` takes
    scales: tuple[float, ...]  # the factors it runs at
    snap: int  # its input and output sides are multiples of this (its VAE's spatial factor)
    tile_sizes: tuple[tuple[int, int], ...]  # (height, width) of its trained tiles, in output pixels
    present: bool = True  # its weights are on this machine; when not, plans fall back to bicubic


@dataclass(frozen=True)
class SizePlan:
    width: int  # the generation size
    height: int
    upscaler: str  # "none" | "bicubic" | the upscaler's name
    upscale: float  # the learned upscaler's factor; 1.0 when there is none


def plan_size(preset: Preset, width: int, height: int, upscaler: UpscalerSpec | None = None) -> SizePlan:
    """The generation size and upscaler for an output of ``width`` x ``height`` (module docstring)."""
    native = generation_size(preset, width, height)
    learned = upscaler if upscaler is not None and upscaler.present else None
    for scale in (1.0, *(learned.scales if learned else ())):
        for size in (_covering(preset, width, height, scale, learned), native):
            out = _output(size, scale, learned)
            if out is None or out[0] < width or out[1] < height:
                continue
            if size == native or abs(size[0] * size[1] / preset.native_pixels - 1) <= TOLERANCE:
                name = "none" if scale == 1.0 or learned is None else learned.name
                return SizePlan(*size, name, scale)
    if learned is not None:
        fitting = [s for s in learned.scales if _output(native, s, learned) is not None]
        if fitting:  # only a tiny model is this small: its largest scale, then bicubic for the rest
            return SizePlan(*native, learned.name, max(fitting))
    return SizePlan(*native, "bicubic", 1.0)


def upscaled_size(spec: UpscalerSpec, width: int, height: int, scale: float) -> tuple[int, int] | None:
    """The upscaler's output size for a ``width`` x ``height`` clip at ``scale``, or ``None`` when the clip is
    smaller than the trained tile the pipeline picks for its aspect (the pipeline refuses it)."""
    tiling = 2 if scale == 2.25 else int(scale)
    # The input side the pipeline tiles: on snap, and for 2.25 after its 1.125 pre-upscale.
    tiled_w, tiled_h = _side(width, scale, spec) // tiling, _side(height, scale, spec) // tiling
    tile_h, tile_w = min(spec.tile_sizes, key=lambda hw: abs(hw[1] / hw[0] - tiled_w / tiled_h))
    if tiled_h < tile_h // tiling or tiled_w < tile_w // tiling:
        return None
    return tiled_w * tiling, tiled_h * tiling


def _output(size: tuple[int, int], scale: float, spec: UpscalerSpec | None) -> tuple[int, int] | None:
    if scale == 1.0 or spec is None:
        return size
    return upscaled_size(spec, *size, scale)


def _covering(
    preset: Preset, width: int, height: int, scale: float, spec: UpscalerSpec | None
) -> tuple[int, int]:
    """The smallest size on the preset's multiple whose output after ``x scale`` covers ``width`` x ``height``,
    each side on its own (the upscaler's rounding is per side)."""
    m = preset.size_multiple

    def side(target: int, out: int) -> int:
        return next(s for s in _multiples(m, math.ceil(target / scale)) if _side(s, scale, spec) >= out)

    return side(width, width), side(height, height)


def _side(value: int, scale: float, spec: UpscalerSpec | None) -> int:
    # One side through the upscaler's size arithmetic (the tile check is the caller's, on the whole size).
    if scale == 1.0 or spec is None:
        return value
    snap = spec.snap
    value -= value % snap
    if scale == 2.25:
        return round(value * 1.125 / snap) * snap * 2
    return value * int(scale)


def _multiples(m: int, at_least: int) -> Iterator[int]:
    start = max(m, math.floor(at_least / m) * m)
    return iter(range(start, start + 64 * m, m))
