"""Ulysses / ring attention on a denoiser through diffusers' context parallelism (``ContextParallelConfig``).

diffusers 0.42's ``ModelMixin.enable_parallelism`` resolves the rank's device as
``rank % torch.accelerator.device_count()``, which divides by zero on a machine with no accelerator. On CUDA it is
called as documented; on the CPU (gloo ranks) the same three steps it takes are taken here: record the
``ParallelConfig`` on the model and on every attention processor, then ``apply_context_parallel`` with the
model's own ``_cp_plan``. The attention itself is diffusers' (its Ulysses all-to-alls run on gloo too).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["disable", "enable"]


def enable(model: Any, ulysses: int, ring: int, mesh: Any) -> None:
    """Split ``model``'s attention ``ulysses x ring`` ways over ``mesh`` (dims ``ring`` and ``ulysses``)."""
    from diffusers.models._modeling_parallel import ContextParallelConfig

    config = ContextParallelConfig(ulysses_degree=ulysses, ring_degree=ring, mesh=mesh)
    _context_parallel_backend(model, "_native_cudnn" if mesh.device_type == "cuda" else "native")
    if mesh.device_type != "cpu":
        model.enable_parallelism(config=config)
        return
    from diffusers.hooks.context_parallel import apply_context_parallel
    from diffusers.models._modeling_parallel import ParallelConfig

    parallel = ParallelConfig(context_parallel_config=config)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    parallel.setup(rank, world, torch.device("cpu"), mesh=mesh)
    model._parallel_config = parallel
    for processor in _processors(model):
        processor._parallel_config = parallel
    apply_context_parallel(model, config, model._cp_plan)


def _context_parallel_backend(model: Any, fallback: str) -> None:
    """The attention lever may have picked a backend diffusers cannot split (FA3, the varlen kernels): then the
    fastest one it can (cuDNN on CUDA, which ring attention needs too), said once in the log."""
    from diffusers.models.attention_dispatch import AttentionBackendName, _AttentionBackendRegistry

    for processor in _processors(model):
        backend = getattr(processor, "_attention_backend", None)
        name = AttentionBackendName(backend) if backend else _AttentionBackendRegistry.get_active_backend()[0]
        if not _AttentionBackendRegistry._is_context_parallel_available(name):
            logger.warning("attention backend %s cannot run context parallel; using %s", name.value, fallback)
            model.set_attention_backend(fallback)
        return


def disable(model: Any) -> None:
    """Undo ``enable``: the model attends over its whole sequence again, on this rank alone."""
    if getattr(model, "_parallel_config", None) is None:
        return
    from diffusers.hooks.context_parallel import remove_context_parallel

    remove_context_parallel(model, model._cp_plan)
    for processor in _processors(model):
        processor._parallel_config = None
    model._parallel_config = None


def _processors(model: Any) -> list[Any]:
    found = []
    for module in model.modules():
        processor = getattr(module, "processor", None)
        if processor is not None and hasattr(processor, "_parallel_config"):
            found.append(processor)
    return found
