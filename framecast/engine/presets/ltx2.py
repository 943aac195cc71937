"""LTX-2 (Lightricks): LTX-2.0 and LTX-2.5, joint video and audio, their tiny model and distilled variant."""

from __future__ import annotations

from types import MappingProxyType

from framecast.engine.presets.base import Preset, TwoStage, Variant, register, register_variant

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
# The terms of LTX_NEGATIVE that ask for a photographic look: a requested ``style`` (anime, 3D animation, clay,
# comic) is exactly such a look, so with one set they are dropped rather than left to fight it.
LTX_STYLE_TERMS = ("cartoonish rendering", "3D CGI look", "unrealistic materials", "stylized filters")
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
