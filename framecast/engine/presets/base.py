"""The preset and variant types and the registry: data only (no torch); the presets themselves are in this
package's per-family modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from framecast.errors import ConfigError


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
    # Terms of ``negative_prompt`` that name a look or medium ("style", "paintings"): dropped when a request asks
    # for a style, because they would fight it (creative/styles.py).
    style_terms: tuple[str, ...] = ()
    # Clips longer than max_frames (planning/plan.py): "window" (overlapping windows denoised together; the
    # family's own loop), "chain" (image-to-video continuations from the last frame; a model that takes a first
    # frame, as TI2V does) or "shots" (shots of one subject, joined by cuts; any family). Never "stretch": that
    # is the operator's opt-in for speed (FRAMECAST_LONG_CLIPS=stretch).
    extend: str = "shots"
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
    # Frames a chunked (autoregressive) model generates per chunk, its total then cut to the frame rule
    # (planning/frames.py); 0 for a model that generates the whole clip in one pass.
    frame_chunk: int = 0
    # Two-stage generation (``TwoStage``); None: one pass at the generation size.
    two_stage: TwoStage | None = None
    # Components loaded from another folder of the weights than their own name (LTX-2.5's full DiT).
    component_folders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

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
    on its size multiple, at least three multiples) differ. ``FRAMECAST_MODEL=tiny:<preset>`` runs it (CPU
    smoke runs, CI)."""
    if preset.tiny:
        return preset
    m = preset.size_multiple
    # At least three multiples a side, so that any aspect still leaves a VAE decoder a few latent pixels.
    width, height = (max(3 * m, round(side / TWIN_SCALE / m) * m) for side in preset.native_size)
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
    # Distilled weights that run through another pipeline of the same family (its class and its arguments,
    # added to the base preset's).
    pipeline_class: str = ""
    call_kwargs: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
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
            pipeline_class=variant.pipeline_class or base.pipeline_class,
            call_kwargs=MappingProxyType({**base.call_kwargs, **variant.call_kwargs}),
            allow_patterns=variant.allow_patterns or base.allow_patterns,
            component_folders=variant.component_folders,
            size_gb=base.size_gb if variant.size_gb is None else variant.size_gb,
        )
    )
