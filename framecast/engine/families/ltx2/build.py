"""LTX-2 pipelines with random weights: the whole pipeline at tiny size (tests, CI, the tiny presets), and the
transformer and video VAE of the published architecture (``configs/ltx-2.json``) at full size (benchmarks).

Weights come from fixed seeds inside a forked RNG, so building one never changes the caller's random state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.wan.build import building_on, cast_like_pretrained
from framecast.engine.families.wan.build import load_config as _load

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TINY_SEED = 0
_CHARS = "abcdefghijklmnopqrstuvwxyz"

# The transformer and video VAE at tiny size, same classes (the tiny pipeline and the benchmarks' tiny runs).
TINY_TRANSFORMER = {
    "in_channels": 8,
    "out_channels": 8,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 16,
    "audio_in_channels": 4,
    "audio_out_channels": 4,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 4,
    "audio_cross_attention_dim": 8,
    "num_layers": 2,
    "patch_size": 1,
    "patch_size_t": 1,
    "qk_norm": "rms_norm_across_heads",
    "rope_double_precision": False,
    "rope_type": "split",
}
TINY_VAE = {
    "latent_channels": 8,
    "block_out_channels": [8, 8, 8],
    "decoder_block_out_channels": [8, 8, 8],
    "layers_per_block": [1, 1, 1, 1],
    "decoder_layers_per_block": [1, 1, 1, 1],
    "spatio_temporal_scaling": [True, True, True],
    "decoder_spatio_temporal_scaling": [True, True, True],
    "decoder_inject_noise": [False, False, False, False],
    "downsample_type": ["spatiotemporal"] * 3,
    "upsample_type": ["spatiotemporal"] * 3,
    "upsample_residual": [False, False, False],
    "upsample_factor": [1, 1, 1],
    "patch_size": 4,
    "patch_size_t": 1,
    "decoder_causal": False,
}


def build_transformer_and_vae(cfg: dict, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """LTX-2's transformer and video VAE (no text encoder, connectors or audio VAE)."""
    from diffusers import AutoencoderKLLTX2Video, LTX2VideoTransformer3DModel

    with building_on(device, seed, dtype):
        transformer = LTX2VideoTransformer3DModel.from_config(cfg["transformer"])
    with building_on(device, seed + 1):
        vae = AutoencoderKLLTX2Video.from_config(cfg["vae"])
    transformer = cast_like_pretrained(transformer, dtype).eval().requires_grad_(False)
    return transformer, cast_like_pretrained(vae, dtype).eval().requires_grad_(False)


def load_config(name: str = "ltx-2") -> dict:
    return _load(name, CONFIG_DIR)


def tiny_config(name: str = "ltx-2") -> dict:
    """The full-size config with the transformer and VAE shrunk."""
    full = load_config(name)
    return {
        **full,
        "transformer": {**TINY_TRANSFORMER, "caption_channels": 32},
        "vae": TINY_VAE,
        "text_tokens": 16,
    }


def _seeded(factory: Any, *args: Any, **kwargs: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return factory(*args, **kwargs).eval()


def tiny() -> Any:
    """The tiny ``LTX2Pipeline``: every component of the real one (Gemma 3, connectors, video and audio VAEs,
    vocoder), CPU, float32."""
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        GemmaTokenizer,
        SiglipVisionConfig,
    )

    # 1. Text: a character-level Gemma tokenizer and a two-layer Gemma 3 whose width the connectors expect
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "\u2581": 5}
    vocab.update({c: 6 + i for i, c in enumerate(_CHARS)})
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    text_config = Gemma3TextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=256,
        sliding_window=64,
        query_pre_attn_scalar=16,
    )
    vision_config = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    text_encoder = _seeded(
        Gemma3ForConditionalGeneration,
        Gemma3Config(
            text_config=text_config,
            vision_config=vision_config,
            mm_tokens_per_image=4,
            boi_token_index=len(vocab),
            eoi_token_index=len(vocab) + 1,
            image_token_index=len(vocab) + 2,
        ),
    )
    width = text_config.hidden_size
    connectors = _seeded(
        LTX2TextConnectors,
        caption_channels=width,
        text_proj_in_factor=text_config.num_hidden_layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_double_precision=False,
        rope_type="split",
    )

    # 2. Denoiser
    transformer = _seeded(LTX2VideoTransformer3DModel, **TINY_TRANSFORMER, caption_channels=width)

    # 3. Video VAE with the real model's compression (32x spatial, 8x temporal), so the frame rule is 8k+1
    vae = _seeded(AutoencoderKLLTX2Video, **TINY_VAE)
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    # Random decoder weights paint full-range noise that changes every frame, which costs x264 seconds per
    # 720p clip; scaled down, the frames vary by a few grey levels and encode in a fraction of that.
    with torch.no_grad():
        vae.decoder.conv_out.conv.weight.mul_(0.05)

    # 4. Audio: 16 kHz, 100 mel frames a second; the vocoder upsamples by 8*5*4 = 160 = the hop length
    audio_vae = _seeded(
        AutoencoderKLLTX2Audio,
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    vocoder = _seeded(
        LTX2Vocoder,
        in_channels=audio_vae.config.output_channels * audio_vae.config.mel_bins,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[16, 10, 8],
        upsample_factors=[8, 5, 4],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        output_sampling_rate=16000,
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )
