"""Helios pipelines with random weights of the published architecture (``configs/helios-14b.json``), tiny or full
size.

Helios is Wan2.1-T2V-14B fine-tuned into a chunk-by-chunk generator: the same umT5 text encoder and Wan2.1 VAE,
so those (and the tiny tokenizer) come from the Wan family's builders; only the transformer and the schedulers
are Helios's own. Weights come from fixed seeds inside a forked RNG (``building_on``), so building one never
changes the caller's random state, and two builds are identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.wan import build as wan

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# The transformer of diffusers' own Helios fast test (tests/pipelines/helios/test_helios.py), with heads 16 wide
# (2 x 16 = 32: FP8 GEMM dimensions are multiples of 16) and the rotary split widened to match (4 + 6 + 6).
TINY_TRANSFORMER = {
    "patch_size": [1, 2, 2],
    "num_attention_heads": 2,
    "attention_head_dim": 16,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": wan.TINY_TEXT_ENCODER["d_model"],
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "rope_dim": [4, 6, 6],
}


def load_config(name: str = "helios-14b") -> dict:
    return wan.load_config(name, CONFIG_DIR)


def tiny_config(name: str = "helios-14b") -> dict:
    """The full-size config with the transformer, VAE and text encoder shrunk; the history options kept."""
    full = load_config(name)
    return {
        **full,
        "transformer": {**full["transformer"], **TINY_TRANSFORMER},
        "vae": wan.TINY_VAE_21,
        "text_encoder": "tiny",
    }


def build_transformer(cfg: dict, device: torch.device, dtype: torch.dtype, seed: int = 0) -> Any:
    from diffusers import HeliosTransformer3DModel

    with wan.building_on(device, seed, dtype):
        model = HeliosTransformer3DModel.from_config(cfg["transformer"])
    return wan.cast_like_pretrained(model, dtype).eval().requires_grad_(False)


def build_scheduler(distilled: bool) -> Any:
    """The sampler each checkpoint is published with, at the settings of diffusers' tests: single-stage UniPC
    with dynamic shifting for Base (``HeliosPipeline`` takes ``mu`` from the chunk's token count), three-stage
    DMD for Distilled. A real folder's own ``scheduler/`` config replaces it."""
    from diffusers import HeliosDMDScheduler, HeliosScheduler

    if distilled:
        return HeliosDMDScheduler()
    return HeliosScheduler(stages=1, stage_range=[0, 1], use_dynamic_shifting=True)


def tiny(distilled: bool = False) -> Any:
    """The tiny ``HeliosPipeline`` (Base), or with ``distilled`` the tiny ``HeliosPyramidPipeline`` with the DMD
    scheduler (Distilled); CPU, float32."""
    from diffusers import HeliosPipeline, HeliosPyramidPipeline

    cpu, cfg = torch.device("cpu"), tiny_config()
    tokenizer = wan.build_tokenizer()
    vae = wan.build_vae(cfg, cpu, torch.float32)
    # Random decoder weights paint full-range noise that changes every frame, which costs x264 seconds per
    # 720p clip; scaled down, the frames vary by a few grey levels and encode in a fraction of that.
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(0.05)
    components = dict(
        tokenizer=tokenizer,
        text_encoder=wan.build_text_encoder("tiny", cpu, torch.float32, len(tokenizer)),
        vae=vae,
        transformer=build_transformer(cfg, cpu, torch.float32),
        scheduler=build_scheduler(distilled),
    )
    if distilled:
        return HeliosPyramidPipeline(**components, is_distilled=True)
    return HeliosPipeline(**components)
