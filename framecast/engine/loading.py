"""Where a model runs: the device, the dtype, and the memory mode (CPU offload) that fits the card."""

from __future__ import annotations

from typing import Any

import torch

from framecast.engine.presets import Preset
from framecast.errors import ConfigError

__all__ = ["cuda_total_gb", "model_dtype", "pick_device", "pick_offload", "place"]


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("FRAMECAST_DEVICE=cuda but torch sees no CUDA device")
    return requested


def cuda_total_gb() -> float | None:
    """Memory of the first CUDA device in GB, or ``None`` without one (what ``FRAMECAST_MODEL=auto`` asks)."""
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / 2**30


def model_dtype(preset: Preset, device: str) -> torch.dtype:
    """The preset's dtype on CUDA; the CPU always runs float32."""
    return getattr(torch, preset.dtype) if device == "cuda" else torch.float32


def pick_offload(requested: str, device: str, free_gb: float, preset: Preset) -> str:
    """The memory mode: as asked, or (``auto``) the fastest one that fits ``free_gb`` of GPU memory."""
    if requested != "auto":
        return requested
    if device != "cuda" or free_gb >= preset.memory_gb:
        return "none"
    # Model offload keeps one component on the GPU at a time: the largest is about half the total.
    return "model" if free_gb >= preset.memory_gb / 2 else "group"


def place(pipe: Any, device: str, offload: str) -> None:
    """Put ``pipe`` on ``device`` in the memory mode ``offload`` (diffusers' offload hooks)."""
    if offload == "none":
        pipe.to(device)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.enable_group_offload(
            onload_device=torch.device(device), offload_type="leaf_level", use_stream=device == "cuda"
        )
    # The VAE decode is where most out-of-memory errors happen; tiling costs little when memory is short.
    vae: Any = getattr(pipe, "vae", None)
    if offload != "none" and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
