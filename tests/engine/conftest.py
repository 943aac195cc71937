"""Shared fixtures for the engine tests: the tiny engines, loaded once, and a recording render context."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from framecast.config import Settings

# The test machine's cores are shared: one intra-op thread avoids oversubscription, which made the tiny Wan
# VAE decode ten times slower than on one thread.
torch.set_num_threads(1)


class RecordingContext:
    """A ``RenderContext`` that keeps what the engine said and stops when ``stop_after`` steps are done."""

    def __init__(self, stop_after: int | None = None, reason: str = "cancelled") -> None:
        self.logs: list[str] = []
        self.steps: list[tuple[int, int]] = []
        self.stop_after = stop_after
        self.reason = reason

    def log(self, message: str, level: str = "INFO") -> None:
        self.logs.append(message)

    def progress(self, step: int, total: int) -> None:
        self.steps.append((step, total))

    def should_stop(self) -> str | None:
        if self.stop_after is not None and len(self.steps) >= self.stop_after:
            return self.reason
        return None


class Log(list):
    """A log callback that keeps what it is told."""

    def __call__(self, message: str) -> None:
        self.append(message)


def variant_engine(monkeypatch, variant, **settings: Any) -> Any:
    """A loaded CPU engine for a test-only variant (``presets.Variant``) of a tiny preset."""
    from framecast.engine import EngineOptions, presets
    from framecast.engine.engine import DiffusersEngine

    monkeypatch.setitem(presets.VARIANTS, variant.name, variant)
    base = presets.get_preset(variant.base)
    preset = dataclasses.replace(
        base,
        name=variant.name,
        variant=variant.name,
        steps=variant.steps,
        guidance_scale=variant.guidance_scale,
        tradeoff=variant.tradeoff,
    )
    engine = DiffusersEngine(preset, EngineOptions(device="cpu", **settings))
    engine.load()
    return engine


def decode_frames(path: Path) -> np.ndarray:
    import av  # here, not at the top: the GPU image runs test_cuda.py importing this module, without PyAV

    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.fixture(scope="session")
def tiny_wan():
    from framecast.engine import create_engine

    engine = create_engine(Settings(model="tiny-wan", device="cpu"))
    engine.load()
    return engine


@pytest.fixture(scope="session")
def tiny_ltx2():
    from framecast.engine import create_engine

    engine = create_engine(Settings(model="tiny-ltx2", device="cpu"))
    engine.load()
    return engine
