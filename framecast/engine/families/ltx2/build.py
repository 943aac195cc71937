"""LTX-2 pipelines with random weights: each published architecture's whole pipeline at tiny size (``tiny``:
LTX-2.0 and LTX-2.5, keyed by a preset's ``arch``), with its x2 latent upsampler and a random stage-2 LoRA
(tests, CI, the tiny presets), and the transformer and video VAE of ``configs/ltx-2.json`` at full size
(benchmarks).

What differs between the architectures is read off diffusers' ``scripts/convert_ltx2_to_diffusers.py`` (its
"2.0", "2.3" and "2.5" configs; 2.5 is 2.3's layout with a Gemma 4 text encoder, no video FFN bias and a keyframe
position embedding) and kept at tiny size: the flags that change code paths, the block layouts, the vocoder.

Weights come from fixed seeds inside a forked RNG, so building one never changes the caller's random state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.base import random_lora_layers
from framecast.engine.families.wan.build import building_on, cast_like_pretrained
from framecast.engine.families.wan.build import load_config as _load
from framecast.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TINY_SEED = 0
_CHARS = "abcdefghijklmnopqrstuvwxyz"
TINY_ARCHS = ("ltx-2", "ltx-2.5")

# The widths the transformer's cross-attention takes text in, which LTX-2.3/2.5's connectors project to.
_TINY_VIDEO_TEXT_WIDTH = 16
_TINY_AUDIO_TEXT_WIDTH = 8
# The transformer and video VAE at tiny size, same classes (the tiny pipeline and the benchmarks' tiny runs).
TINY_TRANSFORMER = {
    "in_channels": 8,
    "out_channels": 8,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": _TINY_VIDEO_TEXT_WIDTH,
    "audio_in_channels": 4,
    "audio_out_channels": 4,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 4,
    "audio_cross_attention_dim": _TINY_AUDIO_TEXT_WIDTH,
    "num_layers": 2,
    "patch_size": 1,
    "patch_size_t": 1,
    "qk_norm": "rms_norm_across_heads",
    "rope_double_precision": False,
    "rope_type": "split",
}
# LTX-2.3's transformer flags (convert script "2.3": gated attention, cross-attention modulation, no caption
# projection in the transformer, perturbed attention for STG) and 2.5's two more ("2.5").
TINY_TRANSFORMER_25 = {
    **TINY_TRANSFORMER,
    "gated_attn": True,
    "cross_attn_mod": True,
    "audio_gated_attn": True,
    "audio_cross_attn_mod": True,
    "use_prompt_embeddings": False,
    "perturbed_attn": True,
    "ff_bias": False,
    "use_keyframes_abs_pos_embedding": True,
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
# LTX-2.3/2.5's video VAE: four encoder and decoder blocks (spatial, temporal, then two spatio-temporal down; the
# decoder up in the reverse order, temporal and spatial apart), channels in the published ratios / 32, no upsample
# residual, zero padding; the compression ratios stated, as the convert script does (32x, 8x).
TINY_VAE_25 = {
    "latent_channels": 8,
    "block_out_channels": [8, 16, 32, 32],
    "decoder_block_out_channels": [8, 16, 16, 32],
    "layers_per_block": [1, 1, 1, 1, 1],
    "decoder_layers_per_block": [1, 1, 1, 1, 1],
    "spatio_temporal_scaling": [True, True, True, True],
    "decoder_spatio_temporal_scaling": [True, True, True, True],
    "decoder_inject_noise": [False] * 5,
    "downsample_type": ["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
    "upsample_type": ["spatiotemporal", "spatiotemporal", "temporal", "spatial"],
    "upsample_residual": [False] * 4,
    "upsample_factor": [2, 2, 1, 2],
    "patch_size": 4,
    "patch_size_t": 1,
    "decoder_causal": False,
    "encoder_spatial_padding_mode": "zeros",
    "decoder_spatial_padding_mode": "zeros",
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}
# The schedulers the convert script writes: full (dev) checkpoints shift with the sequence length and to 0.1;
# distilled ones take their sigmas as given. LTX-2.5's diffusers repo ships the distilled one (the docs).
SCHEDULER_DEV = {"use_dynamic_shifting": True, "shift_terminal": 0.1}
SCHEDULER_AS_GIVEN = {"use_dynamic_shifting": False, "shift_terminal": None}
_SCHEDULER_SHIFTS = {
    "base_shift": 0.95,
    "max_shift": 2.05,
    "base_image_seq_len": 1024,
    "max_image_seq_len": 4096,
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


def tiny(arch: str = "ltx-2") -> Any:
    """The tiny ``LTX2Pipeline`` of ``arch`` (``TINY_ARCHS``): every component of the real one (Gemma 3 or 4,
    connectors, video and audio VAEs, vocoder, LTX-2.5's duration head), CPU, float32."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTX2Pipeline, LTX2VideoTransformer3DModel
    from diffusers.pipelines.ltx2 import LTX2TextConnectors

    if arch not in TINY_ARCHS:
        raise ConfigError(f"no tiny LTX-2 model of architecture {arch!r}: one of {', '.join(TINY_ARCHS)}")
    newer = arch != "ltx-2"
    # 1. Text: a character-level Gemma tokenizer and a two-layer Gemma whose width the connectors expect
    tokenizer = _tiny_tokenizer()
    text_encoder = _tiny_gemma4(len(tokenizer)) if newer else _tiny_gemma3(len(tokenizer))
    connectors = _seeded(LTX2TextConnectors, **_tiny_connectors(newer, _text_width(text_encoder)))

    # 2. Denoiser
    transformer_config = TINY_TRANSFORMER_25 if newer else TINY_TRANSFORMER
    transformer = _seeded(
        LTX2VideoTransformer3DModel, **transformer_config, caption_channels=_text_width(text_encoder)
    )

    # 3. Video VAE with the real model's compression (32x spatial, 8x temporal), so the frame rule is 8k+1
    vae = _tiny_video_vae(TINY_VAE_25 if newer else TINY_VAE)

    # 4. Audio: 16 kHz, 100 mel frames a second; LTX-2.5's vocoder extends it to 48 kHz
    audio_vae = _tiny_audio_vae()
    vocoder = _tiny_vocoder_with_bwe() if newer else _tiny_vocoder()
    scheduler = FlowMatchEulerDiscreteScheduler(
        **_SCHEDULER_SHIFTS, **(SCHEDULER_AS_GIVEN if newer else SCHEDULER_DEV)
    )
    return LTX2Pipeline(
        scheduler=scheduler,
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
        duration_head=_tiny_duration_head() if newer else None,
    )


def tiny_latent_upsampler(arch: str = "ltx-2") -> Any:
    """The tiny x2 spatial ``LTX2LatentUpsamplerModel`` of ``arch`` (what its weights' ``latent_upsampler/``
    holds): 3D convolutions around a x2 resampler, LTX-2.0's rational one or LTX-2.3's pixel shuffle (convert
    script ``use_rational_resampler``; assumed so for 2.5, which continues 2.3). ``mid_channels`` must be a
    multiple of 32: its GroupNorms have 32 groups."""
    from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel

    return _seeded(
        LTX2LatentUpsamplerModel,
        in_channels=TINY_TRANSFORMER["in_channels"],
        mid_channels=32,
        num_blocks_per_stage=1,
        dims=3,
        spatial_upsample=True,
        temporal_upsample=False,
        rational_spatial_scale=2.0,
        use_rational_resampler=arch == "ltx-2",
    )


def save_random_lora(transformer: Any, path: Path, seed: int, rank: int = 4) -> None:
    """A random rank-``rank`` LoRA on the attention projections of a model shaped like ``transformer``, saved
    as the file ``path`` in the layout diffusers' LTX-2 LoRA loader reads (a tiny twin's stage-2 LoRA)."""
    from diffusers import LTX2Pipeline

    LTX2Pipeline.save_lora_weights(
        path.parent,
        transformer_lora_layers=random_lora_layers(transformer, seed, rank),
        weight_name=path.name,
    )


def _tiny_tokenizer() -> Any:
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4, "\u2581": 5}
    vocab.update({c: 6 + i for i, c in enumerate(_CHARS)})
    return GemmaTokenizer(vocab=vocab, merges=[])


def _text_width(text_encoder: Any) -> int:
    return int(text_encoder.config.text_config.hidden_size)


# The tiny Gemma text stacks' sizes (LTX-2/2.3's Gemma 3, LTX-2.5's Gemma 4): two layers, the connectors' input.
_TINY_GEMMA_TEXT: dict[str, Any] = dict(
    hidden_size=32,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=16,
    max_position_embeddings=256,
    sliding_window=64,
)


def _tiny_gemma3(vocab_size: int) -> Any:
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    text_config = Gemma3TextConfig(vocab_size=vocab_size, **_TINY_GEMMA_TEXT, query_pre_attn_scalar=16)
    vision_config = SiglipVisionConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=28,
        patch_size=14,
    )
    return _seeded(
        Gemma3ForConditionalGeneration,
        Gemma3Config(
            text_config=text_config,
            vision_config=vision_config,
            mm_tokens_per_image=4,
            boi_token_index=vocab_size,
            eoi_token_index=vocab_size + 1,
            image_token_index=vocab_size + 2,
        ),
    )


def _tiny_gemma4(vocab_size: int) -> Any:
    """LTX-2.5's text encoder class (``gemma4_unified``, convert script) with text layers only: the pipeline
    reads its hidden states, never images or audio."""
    from transformers import (
        Gemma4UnifiedConfig,
        Gemma4UnifiedForConditionalGeneration,
        Gemma4UnifiedTextConfig,
    )

    text_config = Gemma4UnifiedTextConfig(  # type: ignore[call-arg]  # global_head_dim: read in __post_init__
        vocab_size=vocab_size,
        **_TINY_GEMMA_TEXT,
        global_head_dim=16,
        layer_types=["sliding_attention", "full_attention"],  # Gemma 4's last layer attends to everything
    )
    return _seeded(Gemma4UnifiedForConditionalGeneration, Gemma4UnifiedConfig(text_config=text_config))


def _tiny_connectors(newer: bool, width: int) -> dict[str, Any]:
    common = {
        "caption_channels": width,
        "text_proj_in_factor": 3,  # the text encoder's 2 layers + its embeddings, stacked
        "video_connector_num_layers": 1,
        "video_connector_num_learnable_registers": None,
        "audio_connector_num_layers": 1,
        "audio_connector_num_learnable_registers": None,
        "connector_rope_base_seq_len": 32,
        "rope_double_precision": False,
        "rope_type": "split",
    }
    if not newer:
        return {
            **common,
            "video_connector_num_attention_heads": 4,
            "video_connector_attention_head_dim": 8,
            "audio_connector_num_attention_heads": 4,
            "audio_connector_attention_head_dim": 8,
        }
    # LTX-2.3/2.5: gated attention and one projection per modality, straight to the transformer's widths
    video, audio = _TINY_VIDEO_TEXT_WIDTH, _TINY_AUDIO_TEXT_WIDTH
    return {
        **common,
        "video_connector_num_attention_heads": 2,
        "video_connector_attention_head_dim": video // 2,
        "video_gated_attn": True,
        "audio_connector_num_attention_heads": 2,
        "audio_connector_attention_head_dim": audio // 2,
        "audio_gated_attn": True,
        "per_modality_projections": True,
        "video_hidden_dim": video,
        "audio_hidden_dim": audio,
        "proj_bias": True,
    }


def _tiny_video_vae(config: dict[str, Any]) -> Any:
    from diffusers import AutoencoderKLLTX2Video

    vae = _seeded(AutoencoderKLLTX2Video, **config)
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    # Random decoder weights paint full-range noise that changes every frame, which costs x264 seconds per
    # 720p clip; scaled down, the frames vary by a few grey levels and encode in a fraction of that.
    with torch.no_grad():
        vae.decoder.conv_out.conv.weight.mul_(0.05)
    return vae


def _tiny_audio_vae() -> Any:
    from diffusers import AutoencoderKLLTX2Audio

    return _seeded(
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


# The vocoder upsamples 8 * 5 * 4 = 160 = the audio VAE's hop length; in_channels = 2 channels x 8 mel bins.
_TINY_VOCODER = {
    "in_channels": 16,
    "hidden_channels": 32,
    "out_channels": 2,
    "upsample_kernel_sizes": [16, 10, 8],
    "upsample_factors": [8, 5, 4],
    "resnet_kernel_sizes": [3],
    "resnet_dilations": [[1, 3, 5]],
}


def _tiny_vocoder() -> Any:
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    return _seeded(LTX2Vocoder, **_TINY_VOCODER, output_sampling_rate=16000)


def _tiny_vocoder_with_bwe() -> Any:
    """LTX-2.3/2.5's vocoder: the 16 kHz one, then a bandwidth extender on its mel spectrogram (hop 80) to
    48 kHz, so its upsampling is 80 * 3 = 240 = 6 * 5 * 8 (odd kernel for the odd factor, as published)."""
    from diffusers.pipelines.ltx2.vocoder import LTX2VocoderWithBWE

    return _seeded(
        LTX2VocoderWithBWE,
        **_TINY_VOCODER,
        bwe_in_channels=16,
        bwe_hidden_channels=16,
        bwe_out_channels=2,
        bwe_upsample_kernel_sizes=[12, 11, 16],
        bwe_upsample_factors=[6, 5, 8],
        bwe_resnet_kernel_sizes=[3],
        bwe_resnet_dilations=[[1, 3, 5]],
        filter_length=512,
        hop_length=80,
        window_length=512,
        num_mel_channels=8,
        input_sampling_rate=16000,
        output_sampling_rate=48000,
    )


def _tiny_duration_head() -> Any:
    """LTX-2.5's duration head (it predicts a length when none is asked for; Framecast always asks)."""
    from diffusers.pipelines.ltx2.duration_head import LTX2DurationHead

    return _seeded(
        LTX2DurationHead,
        video_cross_attention_dim=_TINY_VIDEO_TEXT_WIDTH,
        audio_cross_attention_dim=_TINY_AUDIO_TEXT_WIDTH,
        pooler_hidden_dim=16,
        num_queries=1,
        num_pooler_heads=2,
        mlp_hidden_dim=16,
    )
