"""What the worker sees of the engine: a request in, an MP4 out, and a small context to talk back through.

This module imports nothing heavy, so the worker and the tests can name the interface without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from framecast.schema import TextToVideoInput


class RenderContext(Protocol):
    """The engine's only channel back to whoever asked for the render (a job, or the CLI)."""

    def log(self, message: str, level: str = "INFO") -> None: ...

    def progress(self, step: int, total: int) -> None: ...

    def should_stop(self) -> str | None:
        """``None`` to go on, else the reason to stop: ``"cancelled"`` or ``"request_timeout"``."""
        ...


@dataclass
class RenderResult:
    path: Path
    width: int
    height: int
    frames: int
    fps: float
    has_audio: bool
    seed: int
    prompt: str
    negative_prompt: str
    shots: list[dict] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.frames / self.fps


class Engine(Protocol):
    """A loaded model ready to render. ``load`` is called once per worker; ``render`` many times."""

    name: str

    def load(self) -> None:
        """Load weights; raise ``ModelUnavailableError`` with one clear sentence when they are missing."""
        ...

    def render(self, request: TextToVideoInput, ctx: RenderContext, out_path: Path) -> RenderResult:
        """Render ``request`` to ``out_path``; raise ``RenderStopped`` within one step when ``ctx.should_stop()``."""
        ...
