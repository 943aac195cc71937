"""The frame-count rule of video models, written once: generated clips are ``step * k + 1`` frames long."""

from __future__ import annotations

import math

__all__ = ["on_rule", "longest_on_rule"]


def on_rule(frames: float, step: int) -> int:
    """The smallest count ``step * k + 1`` that holds ``frames`` frames."""
    return math.ceil((frames - 1) / step) * step + 1


def longest_on_rule(max_frames: int, step: int) -> int:
    """The largest count ``step * k + 1`` that is at most ``max_frames``."""
    return (max_frames - 1) // step * step + 1
