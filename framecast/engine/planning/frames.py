"""The frame-count rule of video models, written once: generated clips are ``step * k + 1`` frames long.

A chunked (autoregressive) model generates ``chunk`` frames at a time and cuts its total to the same rule, so its
clips are ``cut(n * chunk)`` frames for ``n`` chunks (Helios: 33-frame chunks cut to ``4k + 1``: 33, 65, 97,
129, 165, ...). ``chunk=0`` is a model that generates the whole clip in one pass.
"""

from __future__ import annotations

import math

__all__ = ["chunks_for", "longest_on_rule", "on_rule"]


def _cut(frames: int, step: int) -> int:
    return (frames - 1) // step * step + 1


def chunks_for(frames: float, step: int, chunk: int) -> int:
    """The fewest chunks whose cut total holds ``frames`` frames (the cut can drop up to ``step - 1``)."""
    count = max(1, math.ceil(frames / chunk))
    while _cut(count * chunk, step) < frames:
        count += 1
    return count


def on_rule(frames: float, step: int, chunk: int = 0) -> int:
    """The smallest count of the rule that holds ``frames`` frames."""
    if chunk:
        return _cut(chunks_for(frames, step, chunk) * chunk, step)
    return math.ceil((frames - 1) / step) * step + 1


def longest_on_rule(max_frames: int, step: int, chunk: int = 0) -> int:
    """The largest count of the rule that is at most ``max_frames``."""
    if chunk:
        count = max_frames // chunk
        while _cut((count + 1) * chunk, step) <= max_frames:
            count += 1
        return _cut(count * chunk, step)
    return _cut(max_frames, step)
