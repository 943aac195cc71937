"""The step-distillation lever (quality-changing; a preset variant).

Distilled *weights* (``Variant.repo_id``, e.g. FastWan's DMD checkpoint) are loaded in place of the base ones, and
their family builds the sampler they were distilled for; distillation *LoRAs* (``Variant.lora_files``, e.g.
LightX2V's 4-step LoRAs) are fused here into the weights, one file per expert, so no adapter runs at render time.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.engine.speed import Modules

__all__ = ["DistillOptions", "apply"]


@dataclass(frozen=True)
class DistillOptions:
    name: str  # adapter names derive from it
    lora_repo: str  # a hub repo or a local folder
    lora_files: tuple[str, ...]  # one per expert, in the experts' order


def apply(modules: Modules, options: DistillOptions) -> None:
    if len(options.lora_files) != len(modules.experts):
        raise ValueError(
            f"{options.name}: {len(options.lora_files)} LoRA files for {len(modules.experts)} experts"
        )
    for expert, weight_name in enumerate(options.lora_files):
        modules.load_lora(options.lora_repo, weight_name, f"{options.name}-{expert}", expert)
    # Fused into the weights, then the adapters dropped: no LoRA hooks left at render time. fuse_lora fuses
    # only "transformer" unless told, which would drop a second expert's LoRA.
    names = ["transformer", "transformer_2"][: len(modules.experts)]
    modules.pipe.fuse_lora(components=names)
    modules.pipe.unload_lora_weights()
