"""Output sizes (PixVerse's table, exactly) and the size a model generates at for them."""

from __future__ import annotations

import math

from framecast.engine.presets import Preset
from framecast.schema import AspectRatio, Resolution

__all__ = ["OUTPUT_SIZES", "generation_size"]

# PixVerse v5.5 output sizes (spec/fal-protocol.md), (width, height).
OUTPUT_SIZES: dict[Resolution, dict[AspectRatio, tuple[int, int]]] = {
    Resolution.p360: {
        AspectRatio.r16_9: (640, 360),
        AspectRatio.r4_3: (480, 360),
        AspectRatio.r1_1: (360, 360),
        AspectRatio.r3_4: (360, 480),
        AspectRatio.r9_16: (360, 640),
    },
    Resolution.p540: {
        AspectRatio.r16_9: (960, 540),
        AspectRatio.r4_3: (720, 540),
        AspectRatio.r1_1: (540, 540),
        AspectRatio.r3_4: (540, 720),
        AspectRatio.r9_16: (540, 960),
    },
    Resolution.p720: {
        AspectRatio.r16_9: (1280, 720),
        AspectRatio.r4_3: (960, 720),
        AspectRatio.r1_1: (720, 720),
        AspectRatio.r3_4: (720, 960),
        AspectRatio.r9_16: (720, 1280),
    },
    Resolution.p1080: {
        AspectRatio.r16_9: (1920, 1080),
        AspectRatio.r4_3: (1440, 1080),
        AspectRatio.r1_1: (1080, 1080),
        AspectRatio.r3_4: (1080, 1440),
        AspectRatio.r9_16: (1080, 1920),
    },
}


def generation_size(preset: Preset, width: int, height: int) -> tuple[int, int]:
    """The preset's native pixel count at the aspect ``width / height``; sides multiples of its multiple."""
    aspect = width / height
    m = preset.size_multiple
    gen_height = math.sqrt(preset.native_pixels / aspect)
    return _round_to(gen_height * aspect, m), _round_to(gen_height, m)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)
