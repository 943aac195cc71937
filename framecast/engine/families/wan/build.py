"""Wan pipelines with random weights of the published architectures (``configs/*.json``), full size or tiny.

Compute does not depend on weight values, so a full-size random model times like the real one (``bench/``), and a
tiny one of the same classes renders through the same code as the real one in seconds on a CPU (tests, CI, the
tiny presets). Weights are created where they run (``torch.device("cuda")``), never on the CPU first, cast the
way ``from_pretrained(dtype=...)`` casts them (parameters to the model dtype except the modules a model keeps in
fp32), and drawn from fixed seeds inside a forked RNG, so building one never changes the caller's random state.
"""

from __future__ import annotations

import copy
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.base import random_lora_layers

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TOKENIZER_LETTERS = "abcdefghijklmnopqrstuvwxyz"

# Same classes as the full-size models, a few thousand parameters each (shapes as in spec/models.md).
TINY_TRANSFORMER = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 2,
    "attention_head_dim": 16,  # 2 x 16 = 32 wide: FP8 GEMM dimensions are multiples of 16
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}
TINY_VAE_21 = {
    "base_dim": 3,
    "z_dim": 16,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 8,
}
TINY_VAE_22 = {
    "base_dim": 4,
    "decoder_base_dim": 8,
    "z_dim": 8,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "is_residual": True,
    "in_channels": 12,
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_temporal": 4,
    "scale_factor_spatial": 16,
    "latents_mean": [0.0] * 8,
    "latents_std": [1.0] * 8,
}
TINY_TEXT_ENCODER = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 37,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
}
TEXT_ENCODER_KEYS = (
    "vocab_size",
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_heads",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
    "dropout_rate",
    "layer_norm_epsilon",
    "feed_forward_proj",
)


def load_config(name: str, folder: Path = CONFIG_DIR) -> dict:
    """A published configuration kept as data (``configs/<name>.json``)."""
    return json.loads((folder / f"{name}.json").read_text())


def tiny_config(name: str) -> dict:
    """The full-size config of ``name`` with every network shrunk, keeping what changes code paths."""
    full = load_config(name)
    vae = TINY_VAE_22 if full["vae"].get("is_residual") else TINY_VAE_21
    channels = vae["z_dim"]
    return {
        **full,
        "transformer": {**TINY_TRANSFORMER, "in_channels": channels, "out_channels": channels},
        "vae": vae,
        "text_encoder": "tiny",
    }


def build_tokenizer():
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(c, -3.0) for c in TOKENIZER_LETTERS]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


@contextmanager
def building_on(device: torch.device, seed: int, dtype: torch.dtype = torch.float32):
    """Create parameters on ``device`` in ``dtype`` from ``seed`` (a 14B model built in fp32 would need 56 GB and a
    second pass), without touching the caller's random state."""
    devices = [device] if device.type == "cuda" else []
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device), torch.no_grad():
                yield
        finally:
            torch.set_default_dtype(previous)


def cast_like_pretrained(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """Cast parameters to ``dtype`` except those of ``_keep_in_fp32_modules``, as diffusers' loader does."""
    keep = getattr(model, "_keep_in_fp32_modules", None) or []
    for name, param in model.named_parameters():
        target = torch.float32 if any(m in name.split(".") for m in keep) else dtype
        if param.dtype != target:
            param.data = param.data.to(target)
    return model


def build_transformer(cfg: dict, device: torch.device, dtype: torch.dtype, seed: int = 0):
    from diffusers import WanTransformer3DModel

    # Only parameters depend on the default dtype; rope tables are computed in float64 (tests compare with the
    # loader).
    with building_on(device, seed, dtype):
        model = WanTransformer3DModel.from_config(cfg["transformer"])
    return cast_like_pretrained(model, dtype).eval().requires_grad_(False)


def build_vae(cfg: dict, device: torch.device, dtype: torch.dtype, seed: int = 1):
    from diffusers import AutoencoderKLWan

    with building_on(device, seed):
        vae = AutoencoderKLWan.from_config(cfg["vae"])
    return cast_like_pretrained(vae, dtype).eval().requires_grad_(False)


def build_text_encoder(name: str, device: torch.device, dtype: torch.dtype, vocab_size: int, seed: int = 2):
    """umT5-XXL's encoder (``name="umt5-xxl"``) or the tiny one; built in ``dtype`` on ``device`` directly."""
    from transformers import UMT5Config, UMT5EncoderModel

    values: dict[str, Any]
    if name == "tiny":
        values = {**TINY_TEXT_ENCODER, "vocab_size": vocab_size}
    else:
        full = json.loads((CONFIG_DIR / f"{name}.json").read_text())
        values = {key: full[key] for key in TEXT_ENCODER_KEYS}
    with building_on(device, seed, dtype):
        model: Any = UMT5EncoderModel(UMT5Config(**values))
    return model.to(dtype).eval().requires_grad_(False)


def build_scheduler(cfg: dict):
    from diffusers import UniPCMultistepScheduler

    values = {k: v for k, v in cfg["scheduler"].items() if k != "class"}
    return UniPCMultistepScheduler(**values)


def build_pipeline(
    cfg: dict,
    *,
    device: torch.device,
    dtype: torch.dtype,
    vae_dtype: torch.dtype,
    text_encoder=None,
    tokenizer=None,
    transformer=None,
    vae=None,
    experts: int | None = None,
    with_text_encoder: bool = True,
):
    """A ``WanPipeline`` from ``cfg``; pass already-built parts to share them between pipelines.

    ``experts`` overrides how many transformers an MoE config gets (1 builds only the high-noise expert).
    Without a text encoder the pipeline takes ``prompt_embeds`` only.
    """
    from diffusers import WanPipeline

    tokenizer = tokenizer or build_tokenizer()
    if text_encoder is None and with_text_encoder:
        text_encoder = build_text_encoder(cfg["text_encoder"], device, dtype, len(tokenizer))
    transformer = transformer or build_transformer(cfg, device, dtype)
    experts = cfg["pipeline"].get("experts", 1) if experts is None else experts
    transformer_2 = build_transformer(cfg, device, dtype, seed=3) if experts == 2 else None
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae or build_vae(cfg, device, vae_dtype),
        scheduler=build_scheduler(cfg),
        transformer=transformer,
        transformer_2=transformer_2,
        boundary_ratio=cfg["pipeline"]["boundary_ratio"] if transformer_2 is not None else None,
        expand_timesteps=cfg["pipeline"]["expand_timesteps"],
    )


def with_parts(pipe, **parts):
    """A second pipeline sharing ``pipe``'s modules except ``parts`` (its own scheduler, so no state is
    shared)."""
    from diffusers import WanPipeline

    components = {**pipe.components, "scheduler": copy.deepcopy(pipe.scheduler), **parts}
    return WanPipeline(
        **components, boundary_ratio=pipe.config.boundary_ratio, expand_timesteps=pipe.config.expand_timesteps
    )


def save_random_lora(transformer: Any, folder: Path, seed: int, rank: int = 4) -> None:
    """A random rank-``rank`` LoRA on the attention projections of a model shaped like ``transformer``, saved
    as diffusers' Wan LoRA loader reads it (``folder/pytorch_lora_weights.safetensors``)."""
    from diffusers import WanPipeline

    WanPipeline.save_lora_weights(folder, transformer_lora_layers=random_lora_layers(transformer, seed, rank))


def tiny(arch: str) -> Any:
    """The tiny ``WanPipeline`` of ``arch``'s published architecture (a ``configs/`` name), CPU, float32."""
    cpu = torch.device("cpu")
    return build_pipeline(tiny_config(arch), device=cpu, dtype=torch.float32, vae_dtype=torch.float32)
