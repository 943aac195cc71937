from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from framecast.engine.planning.frames import longest_on_rule
from framecast.engine.presets import VARIANTS, all_presets, get_preset, pick_auto, resolve_preset
from framecast.errors import ConfigError


def test_auto_picks_the_best_ranked_model_that_fits_the_card_and_says_why():
    # wan2.2-t2v-a14b (rank 1) needs 80 GB, 40 with model offload; the 5B 40 (20); the 1.3B 20 (10).
    assert pick_auto(141)[0].name == "wan2.2-t2v-a14b"
    preset, why = pick_auto(80)
    assert preset.name == "wan2.2-t2v-a14b" and "80 GB on the GPU" in why
    assert "with model offload" in pick_auto(48)[1] and pick_auto(48)[0].name == "wan2.2-t2v-a14b"
    assert pick_auto(24)[0].name == "wan2.2-ti2v-5b"
    assert pick_auto(16)[0].name == "wan2.1-t2v-1.3b"
    smallest, why = pick_auto(6)
    assert smallest.name == "wan2.1-t2v-1.3b" and "too small" in why
    preset, why = pick_auto(None)
    assert preset.name == "tiny-wan"
    assert "RANDOM-WEIGHT TEST MODEL" in why and "FRAMECAST_MODEL=" in why


def test_auto_never_picks_a_variant_a_tiny_model_or_a_restrictive_licence():
    ranked = [p for p in all_presets() if p.auto_rank is not None]
    assert ranked and len({p.auto_rank for p in ranked}) == len(ranked)
    for preset in ranked:
        assert not preset.variant and not preset.tiny
        assert preset.licence in ("Apache-2.0", "MIT"), preset.name


def test_auto_without_cuda_logs_a_loud_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_preset("auto", lambda: None).name == "tiny-wan"
    assert "noise" in caplog.text


def test_named_models_resolve_and_unknown_ones_are_a_config_error():
    assert resolve_preset("ltx-2", lambda: 80).joint_audio
    with pytest.raises(ConfigError, match="unknown model 'sora'.*wan2.2-ti2v-5b"):
        get_preset("sora")


def test_presets_follow_the_published_model_facts():
    names = {p.name for p in all_presets()}
    assert {"wan2.2-ti2v-5b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b", "ltx-2", "tiny-wan", "tiny-ltx2"} <= names
    for preset in all_presets():
        assert (preset.max_frames - 1) % preset.frame_step == 0
        assert longest_on_rule(preset.max_frames, preset.frame_step, preset.frame_chunk) == preset.max_frames
        assert preset.native_width % preset.size_multiple == 0
        assert preset.native_height % preset.size_multiple == 0
        assert preset.tiny == (preset.repo_id == "")
    assert get_preset("wan2.2-t2v-a14b").guidance_scale_2 == 3.0
    assert "Community" in get_preset("ltx-2").licence


def test_importing_the_engine_package_does_not_import_torch():
    modules = (
        "framecast.engine, framecast.engine.planning, framecast.engine.planning.buckets, "
        "framecast.engine.presets, framecast.engine.weights, framecast.engine.options, framecast.engine.families"
    )
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_create_engine_names_the_engine_without_loading_it():
    from framecast.config import Settings
    from framecast.engine import create_engine

    engine = create_engine(Settings(model="auto", device="cpu"))
    assert engine.name == "tiny-wan" and engine.pipe is None  # type: ignore[attr-defined]
    assert create_engine(Settings(model="instant")).name == "instant"


def test_variant_presets_are_their_base_model_with_fewer_or_cheaper_steps_and_a_tradeoff():
    turbo = get_preset("wan2.2-t2v-a14b-turbo")
    base = get_preset("wan2.2-t2v-a14b")
    assert turbo.variant == turbo.name and turbo.tradeoff
    assert (turbo.steps, turbo.guidance_scale, turbo.guidance_scale_2) == (4, 1.0, 1.0)
    assert (turbo.repo_id, turbo.native_width, turbo.max_frames) == (base.repo_id, base.native_width, 81)
    fbc = get_preset("wan2.1-t2v-1.3b-fbc")
    assert fbc.variant == fbc.name and "First Block Cache" in fbc.tradeoff
    assert fbc.repo_id == get_preset("wan2.1-t2v-1.3b").repo_id
    assert not base.variant and not base.tradeoff


def test_each_variant_preset_is_its_base_with_the_variants_weights_sampling_and_tradeoff():
    for preset in (p for p in all_presets() if p.variant):
        variant = VARIANTS[preset.variant]
        base = get_preset(variant.base)
        assert preset.name == variant.name and preset.name.startswith(variant.base)
        assert preset.repo_id == (variant.repo_id or base.repo_id)
        assert (preset.steps, preset.guidance_scale, preset.tradeoff) == (
            variant.steps,
            variant.guidance_scale,
            variant.tradeoff,
        )
        assert preset.guidance_scale_2 == (variant.guidance_scale_2 or base.guidance_scale_2)
        assert preset.pipeline_class == (variant.pipeline_class or base.pipeline_class)
        assert dict(preset.call_kwargs) == {**base.call_kwargs, **variant.call_kwargs}
        assert (preset.native_width, preset.fps, preset.max_frames) == (
            base.native_width,
            base.fps,
            base.max_frames,
        )


def test_the_ti2v_turbo_variant_is_fastwans_dmd_checkpoint_at_three_steps_without_cfg():
    turbo = resolve_preset("wan2.2-ti2v-5b-turbo", lambda: 80)
    assert turbo.repo_id == "FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers"
    assert (turbo.steps, turbo.guidance_scale, turbo.extend) == (3, 1.0, "chain")
    assert VARIANTS[turbo.variant].dmd_timesteps == (1000, 757, 522)
    assert "negative prompt has no effect" in turbo.tradeoff


def test_a_tiny_twin_keeps_everything_its_preset_plans_with_but_the_weights_and_the_native_size():
    kept = ("fps", "frame_step", "size_multiple", "max_frames", "extend", "steps", "guidance_scale")
    kept += ("guidance_scale_2", "flow_shift", "negative_prompt", "joint_audio", "variant", "call_kwargs")
    kept += ("frame_chunk", "pipeline_class")
    for preset in (p for p in all_presets() if not p.tiny):
        twin = get_preset(f"tiny:{preset.name}")
        assert twin.name == f"tiny:{preset.name}" and twin.tiny and twin.repo_id == ""
        assert all(getattr(twin, field) == getattr(preset, field) for field in kept), preset.name
        assert twin.architecture == get_preset(preset.name).architecture
        assert twin.native_width % twin.size_multiple == 0 and twin.native_height % twin.size_multiple == 0
        # at least 4x smaller a side, unless three size multiples a side (the floor) is more
        assert twin.native_pixels <= max(preset.native_pixels / 16, (3 * preset.size_multiple) ** 2)
    assert get_preset("tiny:tiny-wan") is get_preset("tiny-wan")
    with pytest.raises(ConfigError, match="unknown model 'sora'"):
        get_preset("tiny:sora")


def test_ltx_presets_carry_their_authors_settings_for_the_weights_they_load():
    from diffusers.pipelines.ltx2.utils import DEFAULT_NEGATIVE_PROMPT, DISTILLED_SIGMA_VALUES

    two, dev, distilled = (get_preset(n) for n in ("ltx-2", "ltx-2.5", "ltx-2.5-distilled"))
    assert (two.steps, two.call_kwargs["spatio_temporal_guidance_blocks"]) == (40, [29])
    assert (dev.steps, dev.call_kwargs["spatio_temporal_guidance_blocks"]) == (30, [28])
    assert (two.call_kwargs["use_cross_timestep"], dev.call_kwargs["use_cross_timestep"]) == (False, True)
    for preset in (two, dev):
        assert preset.guidance_scale == 3.0 and preset.call_kwargs["audio_guidance_scale"] == 7.0
        assert (preset.call_kwargs["stg_scale"], preset.call_kwargs["modality_scale"]) == (1.0, 3.0)
        assert preset.call_kwargs["guidance_rescale"] == 0.7 and preset.two_stage.lora.endswith(
            ".safetensors"
        )
        assert preset.two_stage.lora in preset.allow_patterns and "Community" in preset.licence
    # The authors' full default negative prompt: diffusers' copy plus the caption tags it lacks
    assert two.negative_prompt.endswith(DEFAULT_NEGATIVE_PROMPT) and two.negative_prompt.startswith(
        "has_subtitles"
    )
    variant = VARIANTS[distilled.variant]
    assert variant.distilled and (distilled.steps, distilled.guidance_scale) == (
        len(DISTILLED_SIGMA_VALUES),
        1.0,
    )
    assert distilled.repo_id == dev.repo_id == "Lightricks/LTX-2.5-Diffusers"
    assert (
        "transformer/*" in distilled.allow_patterns and "transformer_full/*" not in distilled.allow_patterns
    )
    assert (
        dict(dev.component_folders) == {"transformer": "transformer_full"} and not distilled.component_folders
    )
    assert "negative prompt has no effect" in distilled.tradeoff and distilled.auto_rank is None


def test_every_real_preset_has_a_row_with_its_own_settings_and_their_sources_in_the_docs():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    section = docs.split("## Every preset's settings, and where each comes from")[1].split("\n## ")[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    assert set(rows) == {p.name for p in all_presets() if not p.tiny}
    for name, (steps, guidance, shift, fps, longest, size, negative, sources) in rows.items():
        preset = get_preset(name)
        scales = f"{preset.guidance_scale}" + (
            f" / {preset.guidance_scale_2}" if preset.guidance_scale_2 is not None else ""
        )
        assert (int(steps), guidance, int(fps), int(longest)) == (
            preset.steps,
            scales,
            preset.fps,
            preset.max_frames,
        ), name
        assert shift == ("folder's" if preset.flow_shift is None else str(preset.flow_shift)), name
        assert size == f"{preset.native_width}×{preset.native_height}", name
        assert negative.startswith("none") == (preset.negative_prompt == "" or preset.guidance_scale <= 1), (
            name
        )
        assert len(sources) > 40, name  # each row says where its values come from
