"""HunyuanVideo 1.5 pipelines with random weights: the whole ``HunyuanVideo15Pipeline`` at tiny size (tests, CI,
the tiny preset), and the transformer and VAE of the published architectures (``configs/*.json``) at full size
(benchmarks; compute does not depend on the weights' values).

The tiny pipeline has every component class of the real checkpoint (the folder diffusers' conversion script
saves): Qwen2.5-VL's language model with a Qwen2 tokenizer, the ByT5 glyph encoder, the transformer, the VAE with the
real compression (16x spatial, 4x temporal, so sizes are multiples of 16 and frame counts 4k+1), the flow-matching
scheduler and the CFG guider. Weights come from fixed seeds inside a forked RNG, so building one never changes the
caller's random state.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.wan.build import building_on, cast_like_pretrained

__all__ = ["CONFIG_DIR", "build_transformer_and_vae", "load_config", "tiny", "tiny_config"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TINY_SEED = 0
LATENT_CHANNELS = 4

# Same classes as the full-size models, a few thousand parameters each.
TINY_TRANSFORMER: dict[str, Any] = {
    # The denoiser's input is [latents | condition latents | condition mask]: 2 x 4 + 1 channels.
    "in_channels": 2 * LATENT_CHANNELS + 1,
    "out_channels": LATENT_CHANNELS,
    "num_attention_heads": 2,
    "attention_head_dim": 16,  # 2 x 16 = 32 wide: FP8 GEMM dimensions are multiples of 16
    "num_layers": 2,
    "num_refiner_layers": 1,
    "mlp_ratio": 2.0,
    "patch_size": 1,
    "patch_size_t": 1,
    "text_embed_dim": 32,  # the tiny Qwen's hidden size
    "text_embed_2_dim": 32,  # the tiny ByT5's d_model
    "image_embed_dim": 16,  # SigLIP's width for image-to-video; text-to-video feeds 729 zero tokens of it
    "rope_axes_dim": (4, 6, 6),  # sums to attention_head_dim
    "target_size": 64,  # the default size's side when a call gives none (Framecast always gives one)
    "task_type": "t2v",
}
TINY_VAE: dict[str, Any] = {
    "latent_channels": LATENT_CHANNELS,
    "block_out_channels": (8, 8, 8, 8, 8),  # five levels, as the real VAE: 16x spatial
    "layers_per_block": 1,
    "spatial_compression_ratio": 16,
    "temporal_compression_ratio": 4,
}

# Qwen2.5-VL's chat template, reduced to what HunyuanVideo15Pipeline sends (string contents): it renders the same
# text as the real template for those messages.
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_QWEN_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # Qwen's ids 151643-151645, in order


# Full size (benchmarks)
def load_config(name: str) -> dict:
    """A published configuration kept as data (``configs/<name>.json``)."""
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def tiny_config(name: str = "hunyuanvideo-1.5-480p") -> dict:
    """The full-size config of ``name`` with the transformer and VAE shrunk."""
    return {**load_config(name), "transformer": TINY_TRANSFORMER, "vae": TINY_VAE}


def build_transformer_and_vae(
    cfg: dict, device: torch.device, dtype: torch.dtype, seed: int = 0
) -> tuple[Any, Any]:
    """The transformer and VAE of ``cfg``, built on ``device`` in ``dtype`` (no text encoders)."""
    from diffusers import AutoencoderKLHunyuanVideo15, HunyuanVideo15Transformer3DModel

    with building_on(device, seed, dtype):
        transformer = HunyuanVideo15Transformer3DModel.from_config(cfg["transformer"])
    with building_on(device, seed + 1, dtype):
        vae = AutoencoderKLHunyuanVideo15.from_config(cfg["vae"])
    transformer = cast_like_pretrained(transformer, dtype).eval().requires_grad_(False)
    return transformer, cast_like_pretrained(vae, dtype).eval().requires_grad_(False)


# Tiny (tests, CI, the tiny preset)
def _seeded(factory: Any, *args: Any, **kwargs: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        return factory(*args, **kwargs).eval()


def _bpe(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encode one pre-token: merge the lowest-ranked (then leftmost) pair until none applies."""
    while len(symbols) > 1:
        pairs = zip(symbols, symbols[1:], strict=False)
        rank, i = min((ranks.get(pair, len(ranks)), i) for i, pair in enumerate(pairs))
        if rank == len(ranks):
            break
        symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2 :]
    return symbols


def _template_merges(pretokenize: Any, text: str) -> list[tuple[str, str]]:
    """BPE merges that make every pre-token of ``text`` (special tokens aside) one token.

    Each merge is appended with the highest rank, so it fires only once no earlier merge applies: pieces already
    whole stay whole, and the result depends on ``text`` alone.
    """
    ranks: dict[tuple[str, str], int] = {}
    special = "|".join(re.escape(t) for t in _QWEN_SPECIAL_TOKENS)
    for segment in re.split(special, text):
        for piece, _ in pretokenize(segment):
            while len(symbols := _bpe(list(piece), ranks)) > 1:
                ranks[(symbols[0], symbols[1])] = len(ranks)
    return list(ranks)


def _qwen_tokenizer(system_message: str) -> Any:
    """A byte-level Qwen2 tokenizer (any text encodes) whose merges turn the pipeline's prompt template into
    exactly the tokens it crops (``prompt_template_encode_start_idx``, 108 with the real tokenizer): what reaches
    the transformer is then the user's prompt alone, and its attention mask counts the prompt's tokens."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    specials: dict[str, Any] = {
        "unk_token": None,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
    }
    alphabet = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    # The byte alphabet alone, to pre-tokenize the template exactly as the final tokenizer will.
    plain = Qwen2Tokenizer(vocab=dict(alphabet), merges=[], **specials)
    plain.chat_template = _CHAT_TEMPLATE
    messages = [[{"role": "system", "content": system_message}, {"role": "user", "content": " "}]]
    template = plain.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)[0]
    assert isinstance(template, str)
    merges = _template_merges(plain.backend_tokenizer.pre_tokenizer.pre_tokenize_str, template)

    vocab = dict(alphabet)
    for token in [a + b for a, b in merges] + list(_QWEN_SPECIAL_TOKENS):
        vocab.setdefault(token, len(vocab))
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # (a, b) pairs, which the tokenizers BPE model takes as they are
        padding_side="right",  # as the real one: the pipeline crops the template off the front
        **specials,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(_QWEN_SPECIAL_TOKENS[1:])})
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def tiny(arch: str = "hunyuanvideo-1.5-480p") -> Any:
    """The tiny ``HunyuanVideo15Pipeline`` (CPU, float32) of ``arch`` (a ``configs/`` name): its networks shrunk,
    its scheduler's shift and guider's scale the published ones."""
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        T5Config,
        T5EncoderModel,
    )

    cfg = tiny_config(arch)

    # 1. Prompt encoder: Qwen2.5-VL's language model. The pipeline reads hidden_states[-3], so with three layers
    #    the first one's output reaches the transformer.
    parameters = inspect.signature(HunyuanVideo15Pipeline._get_mllm_prompt_embeds).parameters
    tokenizer = _qwen_tokenizer(parameters["system_message"].default)
    text_encoder = _seeded(
        Qwen2_5_VLTextModel,
        Qwen2_5_VLTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=cfg["transformer"]["text_embed_dim"],
            intermediate_size=64,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=2048,  # the pipeline pads every prompt to 108 + 1000 tokens
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            bos_token_id=None,
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=tokenizer.pad_token_id,
        ),
    )

    # 2. Glyph encoder: ByT5 (bytes, no vocabulary file); it encodes only the text in quotes in a prompt.
    tokenizer_2 = ByT5Tokenizer()
    text_encoder_2 = _seeded(
        T5EncoderModel,
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=cfg["transformer"]["text_embed_2_dim"],
            d_kv=8,
            d_ff=64,
            num_layers=1,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
            use_cache=False,
        ),
    )

    # 3. Denoiser and VAE
    transformer = _seeded(HunyuanVideo15Transformer3DModel, **cfg["transformer"])
    vae = _seeded(AutoencoderKLHunyuanVideo15, **cfg["vae"])
    # Random decoder weights paint full-range noise that changes every frame, which costs x264 seconds per 720p
    # clip; scaled down, the frames vary by a few grey levels and encode in a fraction of that.
    with torch.no_grad():
        vae.decoder.conv_out.conv.weight.mul_(0.05)

    return HunyuanVideo15Pipeline(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=cfg["scheduler"]["shift"]),
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        guider=ClassifierFreeGuidance(guidance_scale=cfg["guider"]["guidance_scale"]),
    )
