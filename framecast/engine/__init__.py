"""The video engine: presets, planning, diffusers pipelines, encoding, tiny offline models.

Importing this package loads no torch: ``create_engine`` imports the pipeline modules when it is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framecast.engine.base import Engine, RenderContext, RenderResult

if TYPE_CHECKING:
    from framecast.config import Settings

__all__ = ["Engine", "RenderContext", "RenderResult", "create_engine", "INSTANT_MODEL"]

INSTANT_MODEL = (
    "instant"  # FRAMECAST_MODEL=instant: the test/benchmark engine (instant.py), never a real model
)


def create_engine(settings: Settings) -> Engine:
    """The engine ``settings.model`` names (``auto`` picks by hardware). Not loaded yet: call ``load()``."""
    if settings.model == INSTANT_MODEL:
        from framecast.engine.instant import InstantEngine

        return InstantEngine()

    from framecast.engine.pipeline import DiffusersEngine, cuda_total_gb
    from framecast.engine.presets import resolve_preset

    # FRAMECAST_DEVICE=cpu on a GPU machine: auto must not pick a model sized for the GPU.
    memory = (lambda: None) if settings.device == "cpu" else cuda_total_gb
    return DiffusersEngine(resolve_preset(settings.model, memory), settings)
