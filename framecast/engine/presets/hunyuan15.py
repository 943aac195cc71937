"""HunyuanVideo 1.5 (Tencent): 480p and 720p, the tiny model and the CFG-distilled variant."""

from __future__ import annotations

from framecast.engine.presets.base import Preset, Variant, register, register_variant

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
