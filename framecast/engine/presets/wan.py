"""Wan (Alibaba): Wan2.1 1.3B, Wan2.2 TI2V-5B and T2V-A14B, their tiny models and speed variants."""

from __future__ import annotations

from types import MappingProxyType

from framecast.engine.presets.base import Preset, Variant, register, register_variant

# Wan's authors' default negative prompt, in the English their README's diffusers example gives for it (Wan2.1
# README, "Running with Diffusers"; the Chinese original is wan/configs/shared_config.py's sample_neg_prompt).
WAN_NEGATIVE = (
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards"
)
WAN_STYLE_TERMS = ("style", "works", "paintings", "images")

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
