"""The first-block-cache lever (quality-changing; a preset variant: ``Variant.first_block_cache``).

A step reuses the previous step's output of blocks 2..N when block 1's residual moved less than the threshold
(diffusers' ``FirstBlockCacheConfig``); at threshold 0 nothing is reused and the output is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.engine.speed import Modules

__all__ = ["CacheOptions", "apply"]


@dataclass(frozen=True)
class CacheOptions:
    threshold: float


def apply(modules: Modules, options: CacheOptions) -> None:
    from diffusers import FirstBlockCacheConfig

    for expert in modules.experts:
        expert.enable_cache(FirstBlockCacheConfig(threshold=options.threshold))
