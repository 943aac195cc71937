"""The model registry: one ``Preset`` per open-weight model Framecast can render with.

A preset is data only (no torch): what to load, how to call it, and the numbers planning needs. Variants
(a base model with an opt-in, quality-changing speed-up: distilled weights, LoRAs, a cache; ``VARIANTS``) are
presets too, named ``<base>-<variant>``, each saying what it trades away. ``base`` holds the types and the registry;
each model line's presets are one module here, every setting with its source, registered on import in the order
of ``MODEL_LINES`` (the order ``framecast models list`` shows); ``auto`` is the rule for ``FRAMECAST_MODEL=auto``.
"""

from __future__ import annotations

import importlib

from framecast.engine.presets.auto import pick_auto, resolve_preset
from framecast.engine.presets.base import (
    TINY_PREFIX,
    VARIANTS,
    Preset,
    TwoStage,
    Variant,
    all_presets,
    get_preset,
    joint_audio_presets,
    register,
    register_variant,
)

MODEL_LINES = ("wan", "ltx2", "hunyuan15", "helios")
for _line in MODEL_LINES:
    importlib.import_module(f"{__name__}.{_line}")

__all__ = [
    "MODEL_LINES",
    "TINY_PREFIX",
    "VARIANTS",
    "Preset",
    "TwoStage",
    "Variant",
    "all_presets",
    "get_preset",
    "joint_audio_presets",
    "pick_auto",
    "register",
    "register_variant",
    "resolve_preset",
]
