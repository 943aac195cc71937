"""``InstantEngine``: a fake at the hardware boundary, for API tests and load benchmarks only.

It walks through ``steps`` pretend denoising steps (logging, progress and cancellation exactly as a real
render does, optionally sleeping ``step_seconds`` each) and writes a real, small, valid MP4 through
``encode.py``: a grey clip at a tenth of the output size, 8 fps, of the requested duration. No torch; the
bytes are cached per size. What it stands in for is tested for real with the tiny models
(tests/engine/test_pipeline.py).
"""

from __future__ import annotations

import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from framecast.engine.base import RenderContext, RenderResult
from framecast.engine.encode import encode_mp4
from framecast.engine.planning import OUTPUT_SIZES, draw_seed
from framecast.errors import RenderStopped
from framecast.schema import TextToVideoInput

INSTANT_FPS = 8


class InstantEngine:
    """Renders instantly; see the module docstring. Never use it to serve users."""

    def __init__(self, steps: int = 4, step_seconds: float = 0.0) -> None:
        self.name = "instant"
        self.steps = steps
        self.step_seconds = step_seconds

    def load(self) -> None:
        return None

    def render(self, request: TextToVideoInput, ctx: RenderContext, out_path: Path) -> RenderResult:
        out_w, out_h = OUTPUT_SIZES[request.resolution][request.aspect_ratio]
        width, height = _even(out_w / 10), _even(out_h / 10)
        frames = request.duration.seconds * INSTANT_FPS
        seed = request.seed if request.seed is not None else draw_seed()
        ctx.log(f"instant engine (test fake): {self.steps} steps, {width}x{height}, {frames} frames")
        for step in range(1, self.steps + 1):
            reason = ctx.should_stop()
            if reason:
                raise RenderStopped(reason)
            if self.step_seconds:
                time.sleep(self.step_seconds)
            ctx.log(f"step {step}/{self.steps}")
            ctx.progress(step, self.steps)
        out_path.write_bytes(_clip(width, height, frames))
        return RenderResult(
            path=out_path,
            width=width,
            height=height,
            frames=frames,
            fps=INSTANT_FPS,
            has_audio=False,
            seed=seed,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            extra={"file_size": out_path.stat().st_size, "preset": self.name},
        )


@lru_cache(maxsize=64)
def _clip(width: int, height: int, frames: int) -> bytes:
    grey = np.full((height, width, 3), 128, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        encode_mp4(
            path,
            (grey for _ in range(frames)),
            width=width,
            height=height,
            fps=INSTANT_FPS,
            frame_count=frames,
        )
        return path.read_bytes()


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)
