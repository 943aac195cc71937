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

# Wan's authors' default negative prompt, in the English their README's diffusers example gives for it (Wan2.1
# README, "Running with Diffusers"; the Chinese original is wan/configs/shared_config.py's sample_neg_prompt).
WAN_NEGATIVE = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)
WAN_STYLE_TERMS = ("style", "works", "paintings", "images")
# LTX-2's authors' default negative prompt, in full (Lightricks/LTX-2 at 400fd31,
# packages/ltx-pipelines/src/ltx_pipelines/utils/constants.py DEFAULT_NEGATIVE_PROMPT). diffusers' copy
# (pipelines/ltx2/utils.py, pinned to upstream ae855f8) lacks the five leading caption tags.
LTX_NEGATIVE = (
    "has_subtitles, has_blurbox, transition from black, transition to black, speech_ending_short, "
    "blurry, out of focus, overexposed, underexposed, low contrast, washed out colors, excessive noise, "
    "grainy texture, poor lighting, flickering, motion blur, distorted proportions, unnatural skin tones, "
    "deformed facial features, asymmetrical face, missing facial features, extra limbs, disfigured hands, "
    "wrong hand count, artifacts around text, inconsistent perspective, camera shake, incorrect depth of "
    "field, background too sharp, background clutter, distracting reflections, harsh shadows, inconsistent "
    "lighting direction, color banding, cartoonish rendering, 3D CGI look, unrealistic materials, uncanny "
    "valley effect, incorrect ethnicity, wrong gender, exaggerated expressions, wrong gaze direction, "
    "mismatched lip sync, silent or muted audio, distorted voice, robotic voice, echo, background noise, "
    "off-sync audio, incorrect dialogue, added dialogue, repetitive speech, jittery movement, awkward "
    "pauses, incorrect timing, unnatural transitions, inconsistent framing, tilted camera, flat lighting, "
    "inconsistent tone, cinematic oversaturation, stylized filters, or AI artifacts."
)
# The Helios authors' default negative prompt (infer_helios.py --negative_prompt; the diffusers Helios docs use it
# in every example): the English of the default of Wan, the model Helios is fine-tuned from.
HELIOS_NEGATIVE = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)
# The terms of LTX_NEGATIVE that ask for a photographic look: a requested ``style`` (anime, 3D animation, clay,
# comic) is exactly such a look, so with one set they are dropped rather than left to fight it.
LTX_STYLE_TERMS = ("cartoonish rendering", "3D CGI look", "unrealistic materials", "stylized filters")


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


register(
    Preset(
        name="wan2.2-ti2v-5b",
        family="wan",
        pipeline_class="WanPipeline",
        repo_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        dtype="bfloat16",
        # Wan2.2 wan/configs/wan_ti2v_5B.py: sample_fps 24, frame_num 121, vae_stride (4, 16, 16) with patch 2 (a
        # multiple of 32), SIZE_CONFIGS 1280*704; sample_steps 50, sample_guide_scale 5.0, sample_shift 5.0.
        fps=24,
        frame_step=4,
        size_multiple=32,
        native_width=1280,
        native_height=704,
        max_frames=121,
        extend="chain",  # TI2V takes a first frame: its own continuation, colours matched at each join
        steps=50,
        guidance_scale=5.0,
        flow_shift=5.0,
        negative_prompt=WAN_NEGATIVE,
        style_terms=WAN_STYLE_TERMS,
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
        # Wan2.1 wan/configs: sample_fps 16, frame_num 81, vae_stride (4, 8, 8) with patch 2 (a multiple of 16);
        # the README's 1.3B task runs at 832*480 and "we recommend setting --sample_guide_scale 6. The
        # --sample_shift parameter can be adjusted within the range of 8 to 12" (its example: --sample_shift 8);
        # 50 steps (generate.py's default sample_steps for t2v). diffusers' hub scheduler config says shift 3.0.
        fps=16,
        frame_step=4,
        size_multiple=16,
        native_width=832,
        native_height=480,
        max_frames=81,
        extend="window",
        steps=50,
        guidance_scale=6.0,
        flow_shift=8.0,
        negative_prompt=WAN_NEGATIVE,
        style_terms=WAN_STYLE_TERMS,
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
        # Wan2.2 wan/configs/wan_t2v_A14B.py: sample_fps 16, frame_num 81, sample_steps 40, sample_shift 12.0,
        # sample_guide_scale (3.0, 4.0) for the (low-noise, high-noise) experts, boundary 0.875 (diffusers'
        # boundary_ratio), vae_stride (4, 8, 8) with patch 2; SIZE_CONFIGS 1280*720 for 720P.
        fps=16,
        frame_step=4,
        size_multiple=16,
        native_width=1280,
        native_height=720,
        max_frames=81,
        extend="window",
        steps=40,
        guidance_scale=4.0,
        guidance_scale_2=3.0,
        flow_shift=12.0,
        negative_prompt=WAN_NEGATIVE,
        style_terms=WAN_STYLE_TERMS,
        licence="Apache-2.0",
        size_gb=126.0,
        memory_gb=80.0,
        auto_rank=1,
    )
)
# ---- LTX-2 family (Lightricks: joint video + audio) --------------------------------------------------------
# Sources: [C] Lightricks/LTX-2 at 400fd31, packages/ltx-pipelines/src/ltx_pipelines/utils/constants.py
# (PipelineParams, LTX_2_PARAMS, LTX_2_3_PARAMS, LTX_2_4_PARAMS) and ti2vid_two_stages.py / distilled.py;
# [D] diffusers' docs page docs/source/en/api/pipelines/ltx2.md (main at 58eb52c); [P] diffusers 0.42.1
# pipelines/ltx2/pipeline_ltx2.py; [S] diffusers scripts/convert_ltx2_to_diffusers.py; [R] the upstream README
# and LICENSE.md. docs/models.md has the table.
LTX_LICENCE = (
    "LTX-2 Community Licence: a paid licence for entities with $10M+ annual revenue, no use in products that "
    "directly compete with Lightricks'; gated on the Hub (accept the terms, set HF_TOKEN)"  # [R] LICENSE.md
)
# The guidance stack of the authors' guiders, video and audio ([C] PipelineParams video_guider_params /
# audio_guider_params; [D] "Multimodal Guidance": the same values, "Recommended LTX-2.3 guidance parameters").
LTX_GUIDANCE = {
    "stg_scale": 1.0,
    "modality_scale": 3.0,
    "guidance_rescale": 0.7,
    "audio_guidance_scale": 7.0,
    "audio_stg_scale": 1.0,
    "audio_modality_scale": 3.0,
    "audio_guidance_rescale": 0.7,
}
register(
    Preset(
        name="ltx-2",
        family="ltx2",
        pipeline_class="LTX2Pipeline",
        repo_id="Lightricks/LTX-2",  # [D] LTX2Pipeline.from_pretrained("Lightricks/LTX-2")
        dtype="bfloat16",  # [D] dtype=torch.bfloat16
        fps=24,  # [C] frame_rate: float = 24.0
        frame_step=8,  # [P] the VAE's 8x temporal compression: 8k + 1 frames
        size_multiple=64,  # [D] two-stage: "divisible by 64, since stage 1 halves each axis"
        # [C] stage_2_height/width = 2 x (stage_1_height, stage_1_width) = 2 x (512, 768): the pipeline's output
        native_width=1536,
        native_height=1024,
        # LTX-2 is trained on clips up to 20 s; 241 frames covers the 10 s tier in one pass.
        max_frames=241,
        steps=40,  # [C] PipelineParams.num_inference_steps = 40 (LTX_2_PARAMS, the 2.0 weights)
        guidance_scale=3.0,  # [C] video cfg_scale=3.0
        negative_prompt=LTX_NEGATIVE,
        style_terms=LTX_STYLE_TERMS,
        licence=LTX_LICENCE,
        # Estimate: the repo's diffusers folders (19B DiT, Gemma 3 12B, VAEs, vocoder, upsampler) were 90 GB, plus
        # the rank-384 stage-2 LoRA (~4 GB, not read off the hub).
        size_gb=94.0,
        memory_gb=80.0,
        joint_audio=True,
        # [C] ti2vid_two_stages.py: stage 2 "refines using a distilled LoRA"; [D] "Two-stages Generation" loads
        # weight_name="ltx-2-19b-distilled-lora-384.safetensors" from this repo; STAGE_2_DISTILLED_SIGMA_VALUES
        # are 3 steps ([C] lists 4 sigmas with the final 0.0, which diffusers drops).
        two_stage=TwoStage(steps=3, lora="ltx-2-19b-distilled-lora-384.safetensors"),
        call_kwargs=MappingProxyType(
            {
                **LTX_GUIDANCE,
                # [C] stg_blocks=[29] for 2.0; [P] docstring: "[29] is recommended for LTX-2.0"
                "spatio_temporal_guidance_blocks": [29],
                # [P] use_cross_timestep: "False is the legacy LTX-2.0 behavior" (0.42 defaults to True)
                "use_cross_timestep": False,
            }
        ),
        # The single-file checkpoints at the repo root duplicate the diffusers folders; skip them, except the
        # stage-2 LoRA.
        allow_patterns=("*/*", "model_index.json", "ltx-2-19b-distilled-lora-384.safetensors"),
    )
)
# LTX-2.5, the newest LTX-2.x: diffusers 0.42 loads it with the same classes as 2.0/2.3 and a Gemma 4 text encoder
# ([D] "LTX-2.5 reuses the same LTX2Pipeline ... classes as LTX-2.3"). Its official diffusers repo ships the
# distilled DiT in transformer/ (what model_index.json names) and the full one in transformer_full/, the latent
# upsampler and the stage-2 LoRA ([D] "LTX-2.5").
LTX25_REPO = "Lightricks/LTX-2.5-Diffusers"
LTX25_LORA = "ltx-2.5-22b-distilled-lora-450-bf16.safetensors"  # [D] "at the root of the repo"
# What LTX2Pipeline loads ([P] __init__; [S] --full_pipeline), plus the upsampler: no diffusion decoder, no
# prompt enhancer.
LTX25_FILES: tuple[str, ...] = ("model_index.json", "scheduler/*", "text_encoder/*", "tokenizer/*", "vae/*")
LTX25_FILES += ("connectors/*", "audio_vae/*", "vocoder/*", "duration_head/*", "latent_upsampler/*")
register(
    Preset(
        name="ltx-2.5",
        family="ltx2",
        pipeline_class="LTX2Pipeline",
        repo_id=LTX25_REPO,
        dtype="bfloat16",  # [D] dtype=torch.bfloat16
        fps=24,  # [C] frame_rate 24.0; [D] frame_rate = 24.0
        frame_step=8,  # [D] "snapped to the VAE's causal temporal grid (8k + 1)"
        size_multiple=64,  # [D] two-stage for LTX-2.5: "Height and width must be divisible by 64"
        native_width=1536,  # [C] stage 2 = 2 x (512, 768); [D] the 2.5 two-stage example: 1536 x 1024
        native_height=1024,
        max_frames=241,  # as ltx-2: trained up to 20 s ([P] max_seconds defaults to 20.0)
        steps=30,  # [C] LTX_2_4_PARAMS (2.5 is the product name of 2.4) = LTX_2_3_PARAMS: 30 steps
        guidance_scale=3.0,  # [D] "Full / SFT transformer": guidance_scale=3.0
        negative_prompt=LTX_NEGATIVE,  # [D] the full DiT example passes DEFAULT_NEGATIVE_PROMPT; [C] in full
        style_terms=LTX_STYLE_TERMS,
        licence=LTX_LICENCE,
        # Estimates: [R] "roughly 66 GiB" (71 GB) for the distilled DiT, Gemma 4, VAEs and upsampler; the full DiT
        # is as large as the distilled one; the rank-450 LoRA ~5 GB.
        size_gb=76.0,
        memory_gb=90.0,  # estimate: 22B DiT + Gemma 4 12B in bf16 (~70 GB), the LoRA, stage 2's activations
        joint_audio=True,
        two_stage=TwoStage(steps=3, lora=LTX25_LORA),  # [D] "Stage 2 with the distilled LoRA"
        # [D] "transformer_full/ is not referenced by model_index.json, so load it explicitly"
        component_folders=MappingProxyType({"transformer": "transformer_full"}),
        call_kwargs=MappingProxyType(
            {
                **LTX_GUIDANCE,
                "spatio_temporal_guidance_blocks": [28],  # [C] LTX_2_3_PARAMS stg_blocks=[28]; [D] "block 28"
                "use_cross_timestep": True,  # [P] "True is the LTX-2.3/2.5 behavior"
            }
        ),
        allow_patterns=(*LTX25_FILES, "transformer_full/*", LTX25_LORA),
    )
)
# HunyuanVideo 1.5 (Tencent). Sources: TR = github.com/Tencent-Hunyuan/HunyuanVideo-1.5 at 60783e7 (README.md,
# generate.py, LICENSE); DS = diffusers scripts/convert_hunyuan_video1_5_to_diffusers.py; DD = diffusers' docs
# page api/pipelines/hunyuan_video15.md. The diffusers-format weights hold every component the pipeline loads.
HUNYUAN15_FILES = tuple(
    f"{component}/*"
    for component in (
        "guider",
        "scheduler",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "transformer",
        "vae",
    )
) + ("model_index.json",)
HUNYUAN15_LICENCE = (
    "Tencent Hunyuan Community Licence: NOT valid in the EU, the UK or South Korea; above 100M monthly active "
    "users, ask Tencent for a licence"  # TR LICENSE L3, L17 (territory), L31 (100 million monthly active users)
)
register(
    Preset(
        name="hunyuanvideo-1.5-480p",
        family="hunyuan15",
        pipeline_class="HunyuanVideo15Pipeline",
        # TR README L378 names the 720p repo so; DD loads "HunyuanVideo-1.5-Diffusers-480p_t2v". (diffusers'
        # pipeline docstring says "...-1.5-480p_t2v", without "Diffusers", which third parties report missing.)
        repo_id="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v",
        dtype="bfloat16",  # TR README L372 and DD: torch.bfloat16
        fps=24,  # TR README L391 export_to_video(fps=24); generate.py L48
        frame_step=4,  # TR README L443: "temporal dimension F must be 4n+1"
        size_multiple=16,  # TR README L116: 16x spatial compression (patch size 1); bucket stride 16
        # The 480p bucket nearest 16:9 (bucket base 640, TR hyvideo/pipelines/hunyuan_video_pipeline.py L176)
        native_width=848,
        native_height=480,
        max_frames=121,  # TR README L315 --video_length 121; generate.py L223 "121 frames is the optimal value"
        steps=50,  # TR README L347 (480p T2V: CFG 6, flow shift 5, 50 steps); DS GUIDANCE/SCHEDULER_CONFIGS
        guidance_scale=6.0,
        flow_shift=5.0,
        negative_prompt="",  # TR README L310 and generate.py L282: the default negative prompt is ''
        licence=HUNYUAN15_LICENCE,
        # Estimate (the hub's file list not checked): 8.33B transformer in fp32 (33.3 GB, the size of TR's own
        # 480p_t2v file), Qwen2.5-VL-7B's 7.07B language model in bf16 (DS loads it so), ByT5 0.22B and VAE 1.26B
        # in fp32.
        size_gb=53.0,
        # Estimate: 34 GB of bf16 weights, and the transformer's (1, 1, 51k, 51k) attention mask at 121 frames
        # (2.6 GB) built about three times per block. TR README L136 reports 14 GB with offloading.
        memory_gb=45.0,
        allow_patterns=HUNYUAN15_FILES,
    )
)
register(
    Preset(
        name="hunyuanvideo-1.5-720p",
        family="hunyuan15",
        pipeline_class="HunyuanVideo15Pipeline",
        repo_id="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-720p_t2v",  # TR README L378
        dtype="bfloat16",  # TR README L372
        fps=24,  # TR README L391
        frame_step=4,  # TR README L443
        size_multiple=16,  # TR README L116
        # The 720p bucket nearest 16:9 (bucket base 960, TR hyvideo/pipelines/hunyuan_video_pipeline.py L177)
        native_width=1280,
        native_height=720,
        max_frames=121,  # TR README L315
        steps=50,  # TR README L349 (720p T2V: CFG 6, flow shift 9, 50 steps); DS configs
        guidance_scale=6.0,
        flow_shift=9.0,
        negative_prompt="",  # TR README L310
        licence=HUNYUAN15_LICENCE,
        size_gb=53.0,  # estimate, as the 480p preset: the same architecture
        # Estimate: 34 GB of bf16 weights and a 12.9 GB attention mask (114k tokens) built about three times per
        # block; a third-party report measured a 66 GB peak at 720p, 121 frames, default attention backend.
        memory_gb=75.0,
        allow_patterns=HUNYUAN15_FILES,
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
        extend="window",
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

register(
    Preset(
        name="tiny-hunyuan15",  # HunyuanVideo 1.5's classes and 16x / 4x VAE at tiny size
        family="hunyuan15",
        pipeline_class="HunyuanVideo15Pipeline",
        repo_id="",
        dtype="float32",
        fps=24,
        frame_step=4,
        size_multiple=16,
        native_width=128,
        native_height=64,
        max_frames=121,
        steps=2,
        guidance_scale=6.0,
        flow_shift=5.0,
        negative_prompt="",
        licence="test model (random weights)",
        size_gb=0.0,
        memory_gb=0.0,
        tiny=True,
        arch="hunyuanvideo-1.5-480p",
    )
)

# Helios (PKU-YuanGroup): Wan2.1-T2V-14B fine-tuned into an autoregressive generator of 33-frame chunks, each
# conditioned on a compressed history of the ones before, so 8 s and 10 s are generated, not stretched.
# Sources: [R] the authors' README and infer_helios.py (github.com/PKU-YuanGroup/Helios at 2276f8f), [D] the
# diffusers Helios docs (docs/source/en/api/pipelines/helios.md), [P] diffusers 0.42.1 pipeline_helios.py,
# [C] the model card (huggingface.co/BestWishYsh/Helios-Base). docs/models.md has the table.
HELIOS_CHUNKING = MappingProxyType(
    {
        "history_sizes": (16, 2, 1),  # [R] infer_helios.py: long, mid, short history in latent frames
        "keep_first_frame": True,  # [R] infer_helios.py
    }
)
register(
    Preset(
        name="helios-14b",
        family="helios",
        pipeline_class="HeliosPipeline",  # [D] Helios-Base runs through HeliosPipeline
        repo_id="BestWishYsh/Helios-Base",  # [D] "Best Quality, with v-prediction, standard CFG"
        dtype="bfloat16",  # [R] --weight_dtype bf16 (the VAE stays float32, as [D] loads it)
        fps=24,  # [R] --fps 24; [D] export_to_video(..., fps=24)
        frame_step=4,  # [P] the frames are cut to (n - 1) // 4 * 4 + 1 (the Wan VAE's 4x time compression)
        frame_chunk=33,  # [R] "generates 33 frames per chunk" (num_latent_frames_per_chunk=9: (9 - 1) * 4 + 1)
        # [P] asks for multiples of 16; the pyramid pipeline of the distilled variant halves the latent twice
        # before its 2x2 patches (8 latent px = 64 px), and 16:9 then generates the trained 640x384 exactly.
        size_multiple=64,
        native_width=640,  # [R] --width 640 --height 384; trained at that single size (stage_1_post.yaml)
        native_height=384,
        max_frames=1449,  # [R] num_frames 1449 -> 44 chunks, "~60s (1min)" at 24 fps; [P] cuts 1452 to 1449
        steps=50,  # [R] --num_inference_steps 50; [D] num_inference_steps=50
        guidance_scale=5.0,  # [R] --guidance_scale 5.0; [D] guidance_scale=5.0
        negative_prompt=HELIOS_NEGATIVE,
        licence="Apache-2.0",  # [C] license: apache-2.0; [R] LICENSE.txt
        # Estimates, not read off the hub: 14.3B transformer parameters (configs/helios-14b.json) and umT5-XXL,
        # 28.6 + 11.4 GB in bf16, plus the Wan VAE; memory adds the fp32 VAE decode and a chunk's activations.
        size_gb=41.0,
        memory_gb=48.0,
        call_kwargs=HELIOS_CHUNKING,
    )
)
register(
    Preset(
        name="tiny-helios",
        family="helios",
        pipeline_class="HeliosPipeline",
        repo_id="",
        dtype="float32",
        fps=24,
        frame_step=4,
        frame_chunk=33,
        size_multiple=64,
        native_width=128,
        native_height=64,
        max_frames=1449,
        steps=2,
        guidance_scale=5.0,
        negative_prompt="blurry",
        licence="test model (random weights)",
        size_gb=0.0,
        memory_gb=0.0,
        tiny=True,
        arch="helios-14b",
        call_kwargs=MappingProxyType({**HELIOS_CHUNKING, "max_sequence_length": 32}),
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
        guidance_scale=6.0,  # the base model's (its authors' recommendation for the 1.3B)
        tradeoff="First Block Cache at 0.05: skips blocks 2..30 on steps whose first-block residual "
        "barely moved (typically 1.5-2x on 50 steps); fine texture can smear, more at higher thresholds.",
    )
)

register_variant(
    Variant(
        name="hunyuanvideo-1.5-480p-cfg-distilled",
        base="hunyuanvideo-1.5-480p",
        # Tencent's 480P-T2V-cfg-distill (TR README L205) in diffusers' layout, named as the 480p repo is.
        repo_id="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v_distilled",
        # TR README L351: CFG 1, flow shift 5, 50 steps; L361: "must use 50 steps to generate correct results".
        steps=50,
        guidance_scale=1.0,
        tradeoff="CFG-distilled weights, CFG off: one transformer pass a step instead of two (about 2x faster "
        "at the same 50 steps, which it must keep), and the negative prompt has no effect; how its quality "
        "compares with the base model is not measured here.",
    )
)
register_variant(
    Variant(
        name="helios-14b-distilled",
        base="helios-14b",
        repo_id="BestWishYsh/Helios-Distilled",  # [D] "Best Efficiency, with x0-prediction and HeliosDMDScheduler"
        pipeline_class="HeliosPyramidPipeline",  # [D] Helios-Distilled runs through HeliosPyramidPipeline
        steps=2,  # per pyramid stage: [R] --pyramid_num_inference_steps_list 2 2 2; [D] the same list
        guidance_scale=1.0,  # [R] --guidance_scale 1.0; [D] guidance_scale=1.0
        call_kwargs=MappingProxyType({"is_amplify_first_chunk": True}),  # [R] --is_amplify_first_chunk; [D]
        tradeoff="Helios-Distilled: 2 steps at each of 3 pyramid scales (a quarter, half, then full size), "
        "twice that on the first chunk, without CFG, instead of 50 full-size steps with CFG: the authors' "
        "19.5 FPS real-time model; the negative prompt has no effect and its authors rank it below Base for "
        'quality ("Best Efficiency" vs "Best Quality").',
    )
)
register_variant(
    Variant(
        name="tiny-helios-distilled",
        base="tiny-helios",
        pipeline_class="HeliosPyramidPipeline",
        steps=1,
        guidance_scale=1.0,
        call_kwargs=MappingProxyType({"is_amplify_first_chunk": True}),
        tradeoff="test model: the distilled variant's pyramid pipeline and DMD scheduler at tiny size.",
    )
)
# ---- LTX-2 family variants ---------------------------------------------------------------------------------
register_variant(
    Variant(
        name="ltx-2.5-distilled",
        base="ltx-2.5",
        # [D] LTX-2.5 distilled: "driven by an explicit sigma schedule ... and runs unguided"; [C] DISTILLED_SIGMA_
        # VALUES: 8 steps, then the 3-step refine ([C] distilled.py: SimpleDenoiser in both stages).
        steps=8,
        guidance_scale=1.0,
        distilled=True,
        component_folders=MappingProxyType({}),  # the repo's own transformer/ is the distilled DiT [D]
        allow_patterns=(*LTX25_FILES, "transformer/*"),
        size_gb=71.0,  # [R] "roughly 66 GiB"
        tradeoff="LTX-2.5's distilled DiT: 8 + 3 steps on its distilled sigmas with no guidance at all (no CFG, "
        "STG or modality guidance: one transformer row a step) where the full DiT runs 30 steps of four rows "
        "(CFG pair, STG, modality) and the same refine: 11 rows instead of 123, about 6x less transformer "
        "compute as the refine runs at 4x the tokens; the negative prompt has no effect, and its authors keep "
        "the full model for the guided, highest-quality pipelines.",
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
