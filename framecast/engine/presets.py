"""The model registry: one ``Preset`` per open-weight model Framecast can render with.

A preset is data only (no torch): what to load, how to call it, and the numbers planning needs. Variants
(a base model with an opt-in, quality-changing speed-up: distilled weights, LoRAs, a cache; ``VARIANTS``) are
presets too, named ``<base>-<variant>``, each saying what it trades away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from framecast.errors import ConfigError

logger = logging.getLogger(__name__)

WAN_NEGATIVE = (
    "bright tones, overexposed, static, blurred details, subtitles, worst quality, low quality, "
    "JPEG compression artifacts, ugly, deformed, extra fingers, poorly drawn hands, poorly drawn faces, "
    "fused fingers, still picture, messy background, walking backwards"
)
LTX_NEGATIVE = (
    "worst quality, inconsistent motion, blurry, jittery, distorted, watermark, text, subtitles, "
    "low quality, static, deformed"
)


@dataclass(frozen=True)
class TwoStage:
    """A second, refining stage after a learned x2 latent upsample (LTX-2's authors' pipeline): stage 1
    denoises at half the generation size, the family's latent upsampler (the weights' ``latent_upsampler/``)
    doubles its latents, and stage 2 re-noises them and refines for ``steps`` steps at the full size.

    ``lora`` is a file at the weights' root that stage 2 of full (dev) weights runs with: their distilled
    LoRA, as the refine is a distilled schedule. Distilled weights refine as they are (the diffusers docs: "No
    stage 2 LoRA is involved, since the transformer is already distilled").
    """

    steps: int
    lora: str = ""


@dataclass(frozen=True)
class Preset:
    """Everything needed to load one model and plan a render for it."""

    name: str
    family: str  # the model family that renders it: a folder under engine/families/
    pipeline_class: str  # a diffusers class name
    repo_id: str  # Hugging Face repo; "" for the tiny in-code models
    dtype: str  # torch dtype on CUDA; the CPU always runs float32
    fps: int  # native frame rate, also the output frame rate (see plan.py)
    frame_step: int  # frame rule: generated frame counts are frame_step * k + 1
    size_multiple: int  # generated width and height are multiples of this
    native_width: int  # landscape native size: planning keeps its pixel count
    native_height: int
    max_frames: int  # longest single generation that the model handles well
    steps: int
    guidance_scale: float
    negative_prompt: str
    licence: str
    size_gb: float  # download size of the weights
    memory_gb: float  # GPU memory to run with no offload at native size (bf16)
    flow_shift: float | None = None  # None: the scheduler config of the weights
    guidance_scale_2: float | None = None  # the low-noise expert of Wan2.2 A14B
    joint_audio: bool = False  # the pipeline renders an audio track with the video
    # Clips longer than max_frames: "stretch" (resample in time) or "chain" (each segment an image-to-video
    # continuation of the previous one's last frame; needs a model that takes a first frame, as TI2V does).
    extend: str = "stretch"
    tiny: bool = False  # random weights built in code by its family; output is noise
    # The published architecture its family builds the tiny model of (a name in families/<family>/configs/);
    # "" for a real preset: its own name.
    call_kwargs: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    allow_patterns: tuple[str, ...] | None = None  # files to pull; None: the whole repo
    arch: str = ""
    variant: str = ""  # a ``VARIANTS`` name (its weights, sampler and speed levers); "" for a base model
    tradeoff: str = ""  # what the variant gives up for its speed (``framecast models list`` shows it)
    # Its place in FRAMECAST_MODEL=auto's order (1 is tried first; see ``pick_auto``); None: never picked by auto.
    auto_rank: int | None = None
    # Two-stage generation (``TwoStage``); None: one pass at the generation size.
    two_stage: TwoStage | None = None
    # Components loaded from another folder of the weights than their own name (LTX-2.5's full DiT).
    component_folders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Terms of ``negative_prompt`` dropped when a request sets a ``style``, which they would fight.
    style_terms: tuple[str, ...] = ()


    @property
    def native_pixels(self) -> int:
        return self.native_width * self.native_height

    @property
    def architecture(self) -> str:
        return self.arch or self.name

    @property
    def native_size(self) -> tuple[int, int]:
        return self.native_width, self.native_height


_PRESETS: dict[str, Preset] = {}


def register(preset: Preset) -> Preset:
    """Add a preset; variants such as ``wan2.2-ti2v-5b-turbo`` come through here. A taken name is an error."""
    if preset.name in _PRESETS:
        raise ValueError(f"a preset named {preset.name!r} is registered already")
    _PRESETS[preset.name] = preset
    return preset


def get_preset(name: str) -> Preset:
    """The preset ``name``; ``tiny:<preset>`` is that preset's tiny twin (``tiny_twin``)."""
    if name.startswith(TINY_PREFIX):
        return tiny_twin(get_preset(name.removeprefix(TINY_PREFIX)))
    try:
        return _PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(_PRESETS))
        raise ConfigError(f"unknown model {name!r}: choose one of {known}, or auto") from None


TINY_PREFIX = "tiny:"
TWIN_SCALE = 16  # a tiny twin generates at 1/16 of its preset's native width and height


def tiny_twin(preset: Preset) -> Preset:
    """``preset`` on random weights of its family's tiny model of the same architecture: its fps, frame rule,
    longest clip, long-clip method, steps, guidance, shift, negative prompt, audio and variant all kept, so a
    request plans and renders through exactly its code path; only the weights and the native size (1/16 per side,
    on its size multiple) differ. ``FRAMECAST_MODEL=tiny:<preset>`` runs it (CPU smoke runs, CI)."""
    if preset.tiny:
        return preset
    m = preset.size_multiple
    width, height = (max(m, round(side / TWIN_SCALE / m) * m) for side in preset.native_size)
    return replace(
        preset,
        name=TINY_PREFIX + preset.name,
        repo_id="",
        dtype="float32",
        native_width=width,
        native_height=height,
        licence=f"test model (random weights) of {preset.name}",
        size_gb=0.0,
        memory_gb=0.0,
        tiny=True,
        arch=preset.architecture,
        allow_patterns=None,
    )


def all_presets() -> list[Preset]:
    return list(_PRESETS.values())


def joint_audio_presets() -> str:
    """The real presets that render their own soundtrack (dialogue included), for messages."""
    return ", ".join(p.name for p in all_presets() if p.joint_audio and not p.tiny)


register(
    Preset(
        name="wan2.2-ti2v-5b",
        family="wan",
        pipeline_class="WanPipeline",
        repo_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        dtype="bfloat16",
        fps=24,
        frame_step=4,
        size_multiple=32,
        native_width=1280,
        native_height=704,
        max_frames=121,
        extend="chain",
        steps=50,
        guidance_scale=5.0,
        flow_shift=5.0,
        negative_prompt=WAN_NEGATIVE,
        licence="Apache-2.0",
        size_gb=34.0,
        memory_gb=40.0,
        auto_rank=2,
    )
)
register(
    Preset(
        name="wan2.1-t2v-1.3b",
        family="wan",
        pipeline_class="WanPipeline",
        repo_id="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        dtype="bfloat16",
        fps=16,
        frame_step=4,
        size_multiple=16,
        native_width=832,
        native_height=480,
        max_frames=81,
        steps=50,
        guidance_scale=5.0,
        flow_shift=3.0,
        negative_prompt=WAN_NEGATIVE,
        licence="Apache-2.0",
        size_gb=29.0,
        memory_gb=20.0,
        auto_rank=3,
    )
)
register(
    Preset(
        name="wan2.2-t2v-a14b",
        family="wan",
        pipeline_class="WanPipeline",
        repo_id="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        dtype="bfloat16",
        fps=16,
        frame_step=4,
        size_multiple=16,
        native_width=1280,
        native_height=720,
        max_frames=81,
        steps=40,
        guidance_scale=4.0,
        guidance_scale_2=3.0,
        flow_shift=12.0,
        negative_prompt=WAN_NEGATIVE,
        licence="Apache-2.0",
        size_gb=126.0,
        memory_gb=80.0,
        auto_rank=1,
    )
)
register(
    Preset(
        name="ltx-2",
        family="ltx2",
        pipeline_class="LTX2Pipeline",
        repo_id="Lightricks/LTX-2",
        dtype="bfloat16",
        fps=24,
        frame_step=8,
        size_multiple=32,
        native_width=768,
        native_height=512,
        # LTX-2 is trained on clips up to 20 s; 241 frames covers the 10 s tier in one pass.
        max_frames=241,
        steps=30,
        guidance_scale=3.0,
        negative_prompt=LTX_NEGATIVE,
        licence="LTX-2 Community Licence: free below $10M annual revenue, no directly competing products",
        size_gb=90.0,
        memory_gb=80.0,
        joint_audio=True,
        # The single-file checkpoints at the repo root duplicate the diffusers folders; skip them.
        allow_patterns=("*/*", "model_index.json"),
    )
)
register(
    Preset(
        name="tiny-wan",
        family="wan",
        pipeline_class="WanPipeline",
        repo_id="",
        dtype="float32",
        fps=16,
        frame_step=4,
        size_multiple=16,
        native_width=112,
        native_height=64,
        max_frames=81,
        steps=4,
        guidance_scale=5.0,
        negative_prompt="blurry",
        licence="test model (random weights)",
        size_gb=0.0,
        memory_gb=0.0,
        tiny=True,
        arch="wan2.1-t2v-1.3b",
        call_kwargs=MappingProxyType({"max_sequence_length": 32}),
    )
)
register(
    Preset(
        name="tiny-wan-ti2v",  # Wan2.2 TI2V's architecture (per-token timesteps, its 16x VAE) at tiny size
        family="wan",
        pipeline_class="WanPipeline",
        repo_id="",
        dtype="float32",
        fps=24,
        frame_step=4,
        size_multiple=32,
        native_width=128,
        native_height=64,
        max_frames=41,  # short, so a 5 s test clip already chains three segments
        extend="chain",
        steps=2,
        guidance_scale=5.0,
        negative_prompt="blurry",
        licence="test model (random weights)",
        size_gb=0.0,
        memory_gb=0.0,
        tiny=True,
        arch="wan2.2-ti2v-5b",
        call_kwargs=MappingProxyType({"max_sequence_length": 32}),
    )
)
register(
    Preset(
        name="tiny-ltx2",
        family="ltx2",
        pipeline_class="LTX2Pipeline",
        repo_id="",
        dtype="float32",
        fps=24,
        frame_step=8,
        size_multiple=32,
        native_width=224,
        native_height=128,
        max_frames=121,
        steps=4,
        guidance_scale=3.0,
        negative_prompt="blurry",
        licence="test model (random weights)",
        size_gb=0.0,
        memory_gb=0.0,
        joint_audio=True,
        tiny=True,
        arch="ltx-2",
        # Two transformer layers: the default spatio-temporal guidance block (28) does not exist.
        call_kwargs=MappingProxyType(
            {
                "max_sequence_length": 32,
                "spatio_temporal_guidance_blocks": None,
                "stg_scale": 0.0,
                "audio_stg_scale": 0.0,
            }
        ),
    )
)


@dataclass(frozen=True)
class Variant:
    """A quality-changing speed-up of a base preset: opt-in only, never applied to the base preset's name.

    ``repo_id`` replaces the base weights (a distilled checkpoint); ``lora_repo``/``lora_files`` are fused
    into the transformer(s), one file per expert; ``dmd_timesteps`` replaces the scheduler with DMD sampling at
    those training timesteps (dmd.py), as a DMD-distilled checkpoint needs; ``first_block_cache`` is First Block
    Cache's threshold (a step reuses the previous step's output of blocks 2..N when block 1's residual moved
    less than this); ``distilled`` marks weights distilled for their family's own fixed schedule, sampled on it
    without any guidance (LTX-2: its distilled sigmas; the family knows them). The engine applies them at load
    through the speed levers (speed/) and the family.
    """

    name: str
    base: str
    steps: int
    guidance_scale: float
    tradeoff: str
    repo_id: str = ""
    lora_repo: str = ""
    lora_files: tuple[str, ...] = ()
    first_block_cache: float | None = None
    guidance_scale_2: float | None = None
    dmd_timesteps: tuple[int, ...] = ()
    distilled: bool = False
    # Its files, when they differ from the base's within the same repo (LTX-2.5 ships both DiTs): what it pulls,
    # its component folders (``Preset.component_folders``: always its own) and its download size.
    allow_patterns: tuple[str, ...] | None = None
    component_folders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    size_gb: float | None = None


VARIANTS: dict[str, Variant] = {}


def register_variant(variant: Variant) -> Preset:
    """Register ``variant`` and its preset: the base preset's planning numbers with the variant's sampling
    settings, weights (when it has its own) and trade-off."""
    VARIANTS[variant.name] = variant
    base = get_preset(variant.base)
    return register(
        replace(
            base,
            name=variant.name,
            variant=variant.name,
            repo_id=variant.repo_id or base.repo_id,
            arch=base.architecture,
            auto_rank=None,
            steps=variant.steps,
            guidance_scale=variant.guidance_scale,
            guidance_scale_2=variant.guidance_scale_2 or base.guidance_scale_2,
            tradeoff=variant.tradeoff,
            allow_patterns=variant.allow_patterns or base.allow_patterns,
            component_folders=variant.component_folders,
            size_gb=base.size_gb if variant.size_gb is None else variant.size_gb,
        )
    )


register_variant(
    Variant(
        name="wan2.2-ti2v-5b-turbo",
        base="wan2.2-ti2v-5b",
        repo_id="FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers",
        steps=3,
        guidance_scale=1.0,
        dmd_timesteps=(1000, 757, 522),  # FastVideo's dmd_denoising_steps for this checkpoint
        tradeoff="FastWan's DMD-distilled weights, 3 steps without CFG: 33x fewer transformer forwards than "
        "50 steps with CFG, and the negative prompt has no effect; detail and motion range below the base "
        "model, weaker adherence to long prompts.",
    )
)
register_variant(
    Variant(
        name="wan2.2-t2v-a14b-turbo",
        base="wan2.2-t2v-a14b",
        lora_repo="lightx2v/Wan2.2-Distill-Loras",
        lora_files=(
            "wan2.2_t2v_A14b_high_noise_lora_rank64_lightx2v_4step_1217.safetensors",
            "wan2.2_t2v_A14b_low_noise_lora_rank64_lightx2v_4step_1217.safetensors",
        ),
        steps=4,
        guidance_scale=1.0,
        guidance_scale_2=1.0,
        tradeoff="Lightning 4-step LoRAs on both experts, no CFG: 20x fewer forwards than 40 steps with "
        "CFG, and the negative prompt has no effect; users report slower motion and less camera movement.",
    )
)
register_variant(
    Variant(
        name="wan2.1-t2v-1.3b-fbc",
        base="wan2.1-t2v-1.3b",
        first_block_cache=0.05,
        steps=50,
        guidance_scale=5.0,
        tradeoff="First Block Cache at 0.05: skips blocks 2..30 on steps whose first-block residual "
        "barely moved (typically 1.5-2x on 50 steps); fine texture can smear, more at higher thresholds.",
    )
)


def pick_auto(cuda_total_gb: float | None) -> tuple[Preset, str]:
    """The preset ``FRAMECAST_MODEL=auto`` runs on this hardware, and why. ``None``: no CUDA device.

    The rule (docs/models.md): among the presets with an ``auto_rank`` (base models under a licence that lets
    anyone use them commercially anywhere: Apache-2.0 or MIT; never a speed variant, never a licence with a
    revenue cap or excluded territories), the best-ranked one that runs on the card with at most model CPU
    offload, i.e. whose largest component (about half of ``memory_gb``) fits in its memory; on a card too small
    for any, the smallest, with group offload.
    """
    if cuda_total_gb is None:
        return get_preset("tiny-wan"), (
            "no CUDA GPU found, so FRAMECAST_MODEL=auto picked tiny-wan: a RANDOM-WEIGHT TEST MODEL "
            "whose videos are noise; set FRAMECAST_MODEL=wan2.1-t2v-1.3b (slow on a CPU) or run on a GPU "
            "for real videos (see `framecast models list`)"
        )
    ranked = sorted((p for p in all_presets() if p.auto_rank is not None), key=lambda p: p.auto_rank or 0)
    for preset in ranked:
        if preset.memory_gb / 2 <= cuda_total_gb:
            mode = "on the GPU" if preset.memory_gb <= cuda_total_gb else "with model offload"
            return preset, (
                f"CUDA GPU with {cuda_total_gb:.0f} GB: {preset.name}, the best-ranked model that fits "
                f"({preset.memory_gb:.0f} GB {mode})"
            )
    smallest = ranked[-1]
    return smallest, (
        f"CUDA GPU with {cuda_total_gb:.0f} GB, too small for every model without group offload: "
        f"{smallest.name}, the smallest"
    )


def resolve_preset(model: str, cuda_total_gb: Callable[[], float | None]) -> Preset:
    """The preset a ``FRAMECAST_MODEL`` value names; ``auto`` asks ``cuda_total_gb`` and logs its choice."""
    if model != "auto":
        return get_preset(model)
    preset, why = pick_auto(cuda_total_gb())
    if preset.tiny:
        logger.warning("!" * 20 + " %s " + "!" * 20, why)
    else:
        logger.info("model: %s", why)
    return preset
