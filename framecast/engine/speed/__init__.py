"""Speed levers: each one a function ``apply(modules, options) -> None`` in its own module, the shape of diffusers'
hooks (``apply_first_block_cache(module, config)``). A lever touches only the ``Modules`` a family hands over, and
its own options; it never sees the engine.

``LEVERS`` is the one table of them. Which family supports which lever is the family's to say
(``Family.levers``); ``supported_by`` reads it back.

How a lever is turned on follows one rule (``RULE``):
- an exact lever is a setting, on by itself where it never costs anything (the attention probe) and opt-in where
  it costs start-up time (compile);
- a lever that changes what the model computes (other weights, fewer steps, skipped blocks) is a preset variant,
  so that the preset's name says which model rendered a video and ``auto`` never picks it;
- a lever that keeps the model and changes only arithmetic precision (FP8, a bf16 VAE) is an opt-in setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["LEVERS", "RULE", "Lever", "Modules", "lever"]

RULE = (
    "exact levers are settings (on by default when free, opt-in when they cost start-up time); levers that "
    "change what the model computes are preset variants; levers that change only arithmetic precision are "
    "opt-in settings"
)


@dataclass(frozen=True)
class Modules:
    """What a lever may touch of one loaded model, as its family hands it over."""

    pipe: Any  # the diffusers pipeline (LoRA loading goes through its loader mixin)
    experts: Sequence[Any]  # the denoisers (transformer, then transformer_2 for two-expert models)
    vae: Any  # the video VAE, or None
    blocks: str  # the attribute of each expert that holds its repeated blocks (fp8 swaps their linears)
    heads: int  # attention heads and head width of the experts, for the attention probe's timing shape
    head_dim: int
    # load_lora(source, weight_name, adapter_name, expert): one LoRA file into one expert (diffusers' loader
    # names the second expert with a keyword only some pipelines have; the family knows which).
    load_lora: Callable[[str, str | None, str, int], None]
    # Whether the experts' attention always takes a padding mask (text padded to a fixed length), so that a
    # backend must accept one (the attention probe tests with one).
    masked_attention: bool = False


@dataclass(frozen=True)
class Lever:
    """One row of the table: what it is, whether it keeps the output exact, and how it is turned on."""

    name: str
    module: str  # framecast.engine.speed.<module>.apply
    exact: bool
    turned_on: str
    effect: str
    setting: str = ""  # the FRAMECAST_* setting that turns it on, for a setting lever


LEVERS: tuple[Lever, ...] = (
    Lever(
        "attention",
        "attention",
        True,
        "automatic on CUDA with the weights resident (no offload)",
        "the fastest attention kernel that matches fp32 math attention on a probe",
    ),
    Lever(
        "compile",
        "compile",
        True,
        "setting FRAMECAST_COMPILE=1 (shapes warmed at load: FRAMECAST_COMPILE_WARMUP)",
        "regional torch.compile of the repeated transformer blocks, static shapes in frame buckets",
        "FRAMECAST_COMPILE=1",
    ),
    Lever(
        "fp8",
        "fp8",
        False,
        "setting FRAMECAST_FP8=1 (CUDA compute capability 8.9+)",
        "e4m3 matmuls with per-row scales in the transformer blocks",
        "FRAMECAST_FP8=1",
    ),
    Lever(
        "vae_bf16",
        "vae",
        False,
        "setting FRAMECAST_VAE_DTYPE=bfloat16 (CUDA)",
        "a bf16 VAE decode with channels-last 3D convolutions",
        "FRAMECAST_VAE_DTYPE=bfloat16",
    ),
    Lever(
        "first_block_cache",
        "cache",
        False,
        "preset variant (Variant.first_block_cache)",
        "reuse blocks 2..N of the previous step when block 1's residual barely moved",
    ),
    Lever(
        "step_distillation",
        "distill",
        False,
        "preset variant (Variant.repo_id for distilled weights, Variant.lora_files for distillation LoRAs)",
        "few-step weights or LoRAs fused into every expert; the family supplies the sampler they need",
    ),
)


def lever(name: str) -> Lever:
    for row in LEVERS:
        if row.name == name:
            return row
    raise KeyError(f"no speed lever named {name!r}")
