"""Continuity across the generated parts of a long clip: colour matching at chained joins, and a drift report.

A chained segment starts from the previous segment's last frame, but it comes back through the model and the VAE
slightly off in colour; uncorrected, the offsets add up segment after segment (the known failure of chaining:
colour drift). ``match_colour`` maps each new segment, through one per-channel affine transform, so that its first
frame has the mean of the frame it continues from and, within ±10%, its spread: a real continuation reproduces its
first frame closely, so a larger correction would only amplify noise (it doubled the sharpness figure of random-
weight segments, whose first frames reproduce nothing; benchmarks.md). ``drift`` measures what is left: mean
colour and a sharpness figure (variance of the luma's Laplacian) per second of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Drift", "drift", "match_colour", "same_picture"]

MAX_SCALE = 1.1  # the largest change of a channel's spread a join may make
_LUMA = torch.tensor([0.2126, 0.7152, 0.0722])  # BT.709, as the MP4 is tagged
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


PICTURE_TOLERANCE = 0.06  # mean absolute difference, colour offsets removed, of a faithful reproduction


def same_picture(frame: torch.Tensor, reference: torch.Tensor) -> bool:
    """Whether ``frame`` reproduces ``reference`` (both (3, h, w) in [0, 1]) up to a colour offset: only then is
    their colour difference drift to correct, rather than a different picture (as random weights give)."""
    offset = frame.float().mean(dim=(1, 2), keepdim=True) - reference.float().mean(dim=(1, 2), keepdim=True)
    return float((frame.float() - offset - reference.float()).abs().mean()) < PICTURE_TOLERANCE


def match_colour(segment: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``segment`` (frames, 3, h, w) in [0, 1] with each channel shifted (and scaled by at most ±10%) so that its
    first frame's mean equals ``reference``'s (3, h, w) and its standard deviation comes as close as that allows."""
    first = segment[0].float()
    mean, std = first.mean(dim=(1, 2)), first.std(dim=(1, 2))
    target_mean, target_std = reference.float().mean(dim=(1, 2)), reference.float().std(dim=(1, 2))
    scale = (target_std / std.clamp(min=1e-4)).clamp(1 / MAX_SCALE, MAX_SCALE).view(1, 3, 1, 1)
    shifted = (segment.float() - mean.view(1, 3, 1, 1)) * scale + target_mean.view(1, 3, 1, 1)
    return shifted.clamp(0, 1).to(segment.dtype)


@dataclass(frozen=True)
class Drift:
    """Per second of a clip: its mean colour (R, G, B in [0, 1]) and sharpness (Laplacian variance of luma)."""

    mean_rgb: list[tuple[float, float, float]]
    sharpness: list[float]

    @property
    def colour_range(self) -> float:
        """The largest change of any channel's mean over the clip: 0 for a clip that keeps its colours."""
        channels = list(zip(*self.mean_rgb, strict=True))
        return max(max(c) - min(c) for c in channels) if self.mean_rgb else 0.0

    def line(self) -> str:
        rgb = " ".join(f"({r:.3f},{g:.3f},{b:.3f})" for r, g, b in self.mean_rgb)
        sharp = " ".join(f"{s:.4f}" for s in self.sharpness)
        return f"mean colour per second {rgb}; sharpness per second {sharp}; colour range {self.colour_range:.4f}"


def drift(video: torch.Tensor, fps: float) -> Drift:
    """``video`` (frames, 3, h, w) in [0, 1], measured second by second (the last second may be shorter)."""
    per_second = max(1, round(fps))
    means, sharpness = [], []
    for start in range(0, video.shape[0], per_second):
        part = video[start : start + per_second].float().cpu()
        means.append(tuple(float(v) for v in part.mean(dim=(0, 2, 3))))
        luma = (part * _LUMA.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        edges = F.conv2d(luma, _LAPLACIAN.view(1, 1, 3, 3))
        sharpness.append(float(edges.var()))
    return Drift(means, sharpness)  # type: ignore[arg-type]
