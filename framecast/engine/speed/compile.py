"""The compile lever: regional ``torch.compile`` of the experts' repeated blocks (exact).

One compiled graph serves every block of a model (``compile_repeated_blocks``), specialised to its input shape: a
new shape compiles again, tens of seconds to minutes on a cold cache. So the engine generates in a few shapes
(planning/buckets.py) and warms them at load (``warm_up``), and this lever raises dynamo's recompile limit above
the number of shapes, so that no shape silently falls back to running uncompiled. Compiled kernels persist in
``cache_dir`` (``TORCHINDUCTOR_CACHE_DIR``, unless already set), so a restarted worker finds them.

Process-wide state, on purpose: inductor reads its cache folder from the environment, and the recompile limit is
dynamo's global config; both are set once per process here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from framecast.engine.speed import Modules

__all__ = ["CompileOptions", "apply", "compile_transformer", "warm_up"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompileOptions:
    backend: str = "inductor"
    mode: str | None = None
    cache_dir: str = ""  # TORCHINDUCTOR_CACHE_DIR when not set already; "" leaves inductor's default
    # Graphs the engine may ask for: shapes x batch sizes (CFG or not) x calls (text-to-video, continuation).
    graphs: int = 8


def compile_transformer(
    transformer, *, backend: str = "inductor", fullgraph: bool = True, mode: str | None = None
):
    """Compile the repeated blocks in place: one graph serves all blocks; shapes are static, one per bucket."""
    kwargs: dict = {"backend": backend, "fullgraph": fullgraph, "dynamic": False}
    if mode is not None:
        kwargs["mode"] = mode
    transformer.compile_repeated_blocks(**kwargs)
    return transformer


def apply(modules: Modules, options: CompileOptions = CompileOptions()) -> None:
    if options.cache_dir:
        cache = os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", options.cache_dir)
        logger.info("compile cache: %s", cache)
    for expert in modules.experts:
        compile_transformer(expert, backend=options.backend, mode=options.mode)
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, options.graphs + 8)


def warm_up(run_one_step: Callable[[int, int, int], object], shapes: Iterable[tuple[int, int, int]]) -> dict:
    """Run one step per (width, height, frames) so compilation happens at start-up, not in a request; returns
    seconds per shape."""
    seconds = {}
    for shape in shapes:
        start = time.perf_counter()
        run_one_step(*shape)
        seconds[shape] = time.perf_counter() - start
    return seconds
