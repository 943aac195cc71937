"""The video engine: presets, planning, model families, speed levers, creative stages, encoding.

Importing this package loads no torch: ``create_engine`` imports the engine's modules when it is called. It is
also the one place that reads ``Settings``: it builds the engine's ``EngineOptions`` from them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from framecast.engine.base import Engine, RenderContext, RenderResult
from framecast.engine.options import EngineOptions

if TYPE_CHECKING:
    from framecast.config import Settings

__all__ = [
    "INSTANT_MODEL",
    "Engine",
    "EngineOptions",
    "RenderContext",
    "RenderResult",
    "create_engine",
    "engine_options",
]

INSTANT_MODEL = (
    "instant"  # FRAMECAST_MODEL=instant: the test/benchmark engine (instant.py), never a real model
)


def engine_options(settings: Settings) -> EngineOptions:
    """The engine's options, read once from the process's settings."""
    return EngineOptions(
        model=settings.model,
        model_path=settings.model_path,
        device=settings.device,
        offload=settings.offload,
        vae_dtype=settings.vae_dtype,
        compile=settings.compile,
        compile_warmup=settings.compile_warmup,
        fp8=settings.fp8,
        long_clips=settings.long_clips,
        data_dir=settings.data_dir,
        style_loras=settings.style_loras,
        prompt_llm=settings.prompt_llm,
        prompt_llm_url=settings.prompt_llm_url,
        prompt_llm_api_key=settings.prompt_llm_api_key,
        audio_model=settings.audio_model,
        parallel=settings.parallel,
        upscaler_model=settings.upscaler_model,
    )


def create_engine(settings: Settings) -> Engine:
    """The engine ``settings.model`` names (``auto`` picks by hardware). Not loaded yet: call ``load()``."""
    options = engine_options(settings)
    if options.model == INSTANT_MODEL:
        from framecast.engine.instant import InstantEngine

        return InstantEngine()

    from framecast.engine.engine import DiffusersEngine
    from framecast.engine.loading import cuda_total_gb
    from framecast.engine.presets import resolve_preset

    # FRAMECAST_DEVICE=cpu on a GPU machine: auto must not pick a model sized for the GPU.
    memory = (lambda: None) if options.device == "cpu" else cuda_total_gb
    return DiffusersEngine(resolve_preset(options.model, memory), options)
