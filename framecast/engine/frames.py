"""From the frames a model generated to the frames of the output: time mapping, resize, centre crop, uint8.

Works in chunks, so a 1080p clip never sits in memory as float. Frames are quantised to uint8 at the
generation size and resized on the CPU, where torch's uint8 antialiased bicubic path is ten times faster.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from framecast.engine.planning import RenderPlan

CHUNK = 16


def output_frames(video: torch.Tensor, plan: RenderPlan) -> Iterator[np.ndarray]:
    """``video`` (frames, 3, h, w) in [0, 1] → ``plan.frames`` uint8 arrays (height, width, 3)."""
    for start in range(0, plan.frames, CHUNK):
        indices = torch.arange(start, min(start + CHUNK, plan.frames), device=video.device)
        chunk = (pick_frames(video, indices, plan).clamp(0, 1) * 255).round().to(torch.uint8).cpu()
        chunk = resize_cover(chunk.contiguous(memory_format=torch.channels_last), plan.width, plan.height)
        yield from chunk.permute(0, 2, 3, 1).numpy()


def pick_frames(video: torch.Tensor, indices: torch.Tensor, plan: RenderPlan) -> torch.Tensor:
    """Output frames ``indices`` from the generated ones: the same frame ("trim", "chain"), or a blend of the
    two generated frames nearest in time ("stretch": the clip is spread over the whole duration)."""
    if plan.temporal != "stretch":
        return video[indices].float()
    position = indices.float() * (video.shape[0] - 1) / max(plan.frames - 1, 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=video.shape[0] - 1)
    weight = (position - low).view(-1, 1, 1, 1)
    return torch.lerp(video[low].float(), video[high].float(), weight)


def resize_cover(chunk: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Scale ``chunk`` (n, 3, h, w; uint8) to cover ``width`` x ``height``, keeping aspect; centre-crop."""
    h, w = chunk.shape[-2:]
    if (w, h) == (width, height):
        return chunk
    scale = max(width / w, height / h)
    scaled_w, scaled_h = max(width, round(w * scale)), max(height, round(h * scale))
    chunk = F.interpolate(
        chunk, size=(scaled_h, scaled_w), mode="bicubic", align_corners=False, antialias=True
    )
    top, left = (scaled_h - height) // 2, (scaled_w - width) // 2
    return chunk[:, :, top : top + height, left : left + width]
