"""``FRAMECAST_MODEL=auto``: the rule that picks the preset for the card this runs on."""

from __future__ import annotations

import logging
from collections.abc import Callable

from framecast.engine.presets.base import Preset, all_presets, get_preset

logger = logging.getLogger(__name__)


def pick_auto(cuda_total_gb: float | None) -> tuple[Preset, str]:
    """The preset ``FRAMECAST_MODEL=auto`` runs on this hardware, and why. ``None``: no CUDA device.

    The rule (docs/models.md): among the presets with an ``auto_rank`` (base models under a licence that lets
    anyone use them commercially anywhere: Apache-2.0 or MIT; never a speed variant, never a licence with a
    revenue cap or excluded territories), the best-ranked one that runs on the card with at most model CPU
    offload, i.e. whose largest component (about half of ``memory_gb``) fits in its memory; on a card too small
    for any, the smallest, with group offload.
    """
    if cuda_total_gb is None:
        return get_preset("tiny-wan"), (
            "no CUDA GPU found, so FRAMECAST_MODEL=auto picked tiny-wan: a RANDOM-WEIGHT TEST MODEL "
            "whose videos are noise; set FRAMECAST_MODEL=wan2.1-t2v-1.3b (slow on a CPU) or run on a GPU "
            "for real videos (see `framecast models list`)"
        )
    ranked = sorted((p for p in all_presets() if p.auto_rank is not None), key=lambda p: p.auto_rank or 0)
    for preset in ranked:
        if preset.memory_gb / 2 <= cuda_total_gb:
            mode = "on the GPU" if preset.memory_gb <= cuda_total_gb else "with model offload"
            return preset, (
                f"CUDA GPU with {cuda_total_gb:.0f} GB: {preset.name}, the best-ranked model that fits "
                f"({preset.memory_gb:.0f} GB {mode})"
            )
    smallest = ranked[-1]
    return smallest, (
        f"CUDA GPU with {cuda_total_gb:.0f} GB, too small for every model without group offload: "
        f"{smallest.name}, the smallest"
    )


def resolve_preset(model: str, cuda_total_gb: Callable[[], float | None]) -> Preset:
    """The preset a ``FRAMECAST_MODEL`` value names; ``auto`` asks ``cuda_total_gb`` and logs its choice."""
    if model != "auto":
        return get_preset(model)
    preset, why = pick_auto(cuda_total_gb())
    if preset.tiny:
        logger.warning("!" * 20 + " %s " + "!" * 20, why)
    else:
        logger.info("model: %s", why)
    return preset
