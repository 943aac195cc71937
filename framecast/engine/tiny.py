"""Tiny random-weight models of the real pipeline classes, built in code with no hub access.

Tests, CI and a CPU-only ``make run`` use them: the same diffusers classes, call paths and output shapes as
the real presets, at a size that renders a 5 s clip on a CPU in seconds. Their output is noise. Weights are
deterministic: each module is initialised from a fixed seed inside a forked RNG, so building one never
touches the caller's random state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

TINY_SEED = 0
_CHARS = "abcdefghijklmnopqrstuvwxyz"


def build_tiny(name: str) -> Any:
    """A tiny pipeline for the preset ``name`` (``tiny-wan``, ``tiny-wan-ti2v``, ``tiny-ltx2``), CPU, float32."""
    builders = {
        "tiny-wan": build_tiny_wan,
        "tiny-wan-ti2v": lambda: build_tiny_wan(expand_timesteps=True),
        "tiny-ltx2": build_tiny_ltx2,
    }
    if name not in builders:
        raise ValueError(f"no tiny model named {name!r}")
    return builders[name]()


def save_tiny(name: str, folder: str | Path) -> Path:
    """Write the tiny pipeline ``name`` with ``save_pretrained``, as a stand-in for downloaded weights."""
    folder = Path(folder)
    build_tiny(name).save_pretrained(folder)
    return folder


def _seeded(factory: Any, *args: Any, **kwargs: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return factory(*args, **kwargs).eval()


def build_tiny_wan(expand_timesteps: bool = False) -> Any:
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)] + [(c, -3.0) for c in _CHARS]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    text_encoder = _seeded(
        UMT5EncoderModel,
        UMT5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
        ),
    )
    transformer = _seeded(
        WanTransformer3DModel,
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
    )
    vae = _seeded(
        AutoencoderKLWan,
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        transformer=transformer,
        vae=vae,
        scheduler=scheduler,
        expand_timesteps=expand_timesteps,
    )


def build_tiny_ltx2() -> Any:
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
    transformer = _seeded(
        LTX2VideoTransformer3DModel,
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=width,
        rope_double_precision=False,
        rope_type="split",
    )

    # 3. Video VAE with the real model's compression (32x spatial, 8x temporal), so the frame rule is 8k+1
    vae = _seeded(
        AutoencoderKLLTX2Video,
        latent_channels=8,
        block_out_channels=(8, 8, 8),
        decoder_block_out_channels=(8, 8, 8),
        layers_per_block=(1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatiotemporal",) * 3,
        upsample_type=("spatiotemporal",) * 3,
        upsample_residual=(False, False, False),
        upsample_factor=(1, 1, 1),
        patch_size=4,
        patch_size_t=1,
        decoder_causal=False,
    )
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
