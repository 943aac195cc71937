"""Helios (PKU-YuanGroup): the 14B chunked autoregressive model, its tiny model and distilled variants."""

from __future__ import annotations

from types import MappingProxyType

from framecast.engine.presets.base import Preset, Variant, register, register_variant

# The Helios authors' default negative prompt (infer_helios.py --negative_prompt; the diffusers Helios docs use it
# in every example): the English of the default of Wan, the model Helios is fine-tuned from.
HELIOS_NEGATIVE = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
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
