"""The generation size and upscaler of every preset and output (planning/upscale.py)."""

from __future__ import annotations

import dataclasses

import pytest

from framecast.engine.planning import OUTPUT_SIZES, UpscalerSpec, generation_size, make_plan, plan_size
from framecast.engine.planning.upscale import TOLERANCE, upscaled_size
from framecast.engine.presets import all_presets, get_preset
from framecast.schema import AspectRatio, Resolution, TextToVideoInput

# The published checkpoint's geometry (Kandinsky6SRPipeline defaults: K-VAE factor 16, 512/768 tiles).
VSR = UpscalerSpec("kandinsky6-vsr", (2.0, 2.25, 4.0), 16, ((512, 512), (512, 768), (768, 512)))
ABSENT = dataclasses.replace(VSR, present=False)
REAL = ["wan2.2-ti2v-5b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b", "ltx-2"]
EVERY = [(p, r, a) for p in [*REAL, "tiny-wan", "tiny-wan-ti2v"] for r in Resolution for a in AspectRatio]

# Worked by hand from the rule (module docstring of upscale.py): (preset, output) -> generation size, upscaler,
# scale, and the upscaler's output.
TABLE = [
    # at or below native: the native size, or a size within 5 % of it that is a crop alone
    ("wan2.2-ti2v-5b", "720p", "16:9", (1280, 736), "none", 1.0, None),  # 4.5 % above 1280x704
    ("wan2.2-ti2v-5b", "720p", "9:16", (736, 1280), "none", 1.0, None),
    ("wan2.2-ti2v-5b", "720p", "4:3", (1088, 832), "none", 1.0, None),  # 960x736 is 22 % below: downscale
    ("wan2.2-ti2v-5b", "360p", "16:9", (1280, 704), "none", 1.0, None),
    ("wan2.2-t2v-a14b", "720p", "16:9", (1280, 720), "none", 1.0, None),  # native is the output
    ("wan2.1-t2v-1.3b", "540p", "4:3", (720, 544), "none", 1.0, None),  # 1.9 % below 399,360 pixels
    # above native: the smallest scale whose output covers, from the native size or one within 5 % of it
    ("wan2.2-ti2v-5b", "1080p", "16:9", (1280, 704), "kandinsky6-vsr", 2.0, (2560, 1408)),
    ("wan2.2-t2v-a14b", "1080p", "16:9", (1280, 720), "kandinsky6-vsr", 2.0, (2560, 1440)),
    # 848 x 1.125 = 954 -> 960 (on 16) -> x2 = 1920; 480 x 1.125 = 540 -> 544 -> 1088: a crop of 8 rows
    ("wan2.1-t2v-1.3b", "1080p", "16:9", (848, 480), "kandinsky6-vsr", 2.25, (1920, 1088)),
    ("wan2.1-t2v-1.3b", "1080p", "9:16", (480, 848), "kandinsky6-vsr", 2.25, (1088, 1920)),
    # x2 from 720x544 (1.9 % below native) is 1440x1088, a crop; the native 736x544 would need a downscale
    ("wan2.1-t2v-1.3b", "1080p", "4:3", (720, 544), "kandinsky6-vsr", 2.0, (1440, 1088)),
    ("wan2.1-t2v-1.3b", "720p", "16:9", (848, 480), "kandinsky6-vsr", 2.0, (1696, 960)),
    ("wan2.1-t2v-1.3b", "540p", "16:9", (848, 480), "kandinsky6-vsr", 2.0, (1696, 960)),
    # Helios's 640x384: x2.25 is 720x432 -> 1440x864 < 1920, so x4
    ("helios-14b", "1080p", "16:9", (640, 384), "kandinsky6-vsr", 4.0, (2560, 1536)),
]


@pytest.mark.parametrize(("name", "resolution", "aspect", "size", "upscaler", "scale", "out"), TABLE)
def test_generation_size_and_upscaler_follow_the_rule(name, resolution, aspect, size, upscaler, scale, out):
    width, height = OUTPUT_SIZES[Resolution(resolution)][AspectRatio(aspect)]
    plan = plan_size(get_preset(name), width, height, VSR)
    assert ((plan.width, plan.height), plan.upscaler, plan.upscale) == (size, upscaler, scale)
    if out is not None:
        assert upscaled_size(VSR, plan.width, plan.height, scale) == out


@pytest.mark.parametrize(("name", "resolution", "aspect"), EVERY)
def test_every_plan_is_on_the_multiple_covers_the_output_and_crops_when_off_native(name, resolution, aspect):
    preset = get_preset(name)
    width, height = OUTPUT_SIZES[resolution][aspect]
    native = generation_size(preset, width, height)
    for spec in (VSR, ABSENT, None):
        plan = plan_size(preset, width, height, spec)
        size = (plan.width, plan.height)
        assert plan.width % preset.size_multiple == 0 and plan.height % preset.size_multiple == 0
        if plan.upscaler in ("none", "bicubic"):
            assert plan.upscale == 1.0
            out = size
        else:
            assert spec is VSR and plan.upscale in VSR.scales
            out = upscaled_size(VSR, *size, plan.upscale)
            assert out is not None
        covered = out[0] >= width and out[1] >= height
        assert covered == (plan.upscaler != "bicubic") or (spec is VSR and not covered and preset.tiny)
        if size != native:  # off the native size only to map by a crop alone, within the tolerance
            assert abs(plan.width * plan.height / preset.native_pixels - 1) <= TOLERANCE
            assert covered
            step = preset.size_multiple * plan.upscale
            assert out[0] - width < 2 * step and out[1] - height < 2 * step


@pytest.mark.parametrize(("name", "resolution", "aspect"), EVERY)
def test_without_the_learned_upscaler_outputs_above_native_are_bicubic_from_the_native_size(
    name, resolution, aspect
):
    preset = get_preset(name)
    width, height = OUTPUT_SIZES[resolution][aspect]
    learned, absent, none = (plan_size(preset, width, height, spec) for spec in (VSR, ABSENT, None))
    assert absent == none
    if learned.upscaler == VSR.name:
        assert none.upscaler == "bicubic" and (none.width, none.height) == generation_size(
            preset, width, height
        )
    else:
        assert learned == none


def test_every_real_presets_1080p_runs_the_learned_upscaler_when_it_is_present():
    from framecast.engine.families import get_family

    # (the engine offers no upscaler stage to a family that upscales in its own pipeline: LTX's two stages)
    for preset in (p for p in all_presets() if not p.tiny and not get_family(p.family).upscales_itself):
        for aspect, (width, height) in OUTPUT_SIZES[Resolution.p1080].items():
            plan = plan_size(preset, width, height, VSR)
            assert plan.upscaler == "kandinsky6-vsr", (preset.name, aspect)
            out = upscaled_size(VSR, plan.width, plan.height, plan.upscale)
            assert out is not None and out[0] >= width and out[1] >= height


def test_a_tiny_clip_smaller_than_the_trained_tiles_is_upscaled_bicubically():
    assert plan_size(get_preset("tiny-wan"), 1920, 1080, VSR).upscaler == "bicubic"
    assert upscaled_size(VSR, 112, 64, 4.0) is None  # the pipeline would refuse it
    tiny = UpscalerSpec("tiny-vsr", VSR.scales, 16, ((128, 128), (128, 256), (256, 128)))
    # No scale covers 1080p from 112x64: the largest that fits runs, the output mapping does the rest
    plan = plan_size(get_preset("tiny-wan"), 1920, 1080, tiny)
    assert ((plan.width, plan.height), plan.upscaler, plan.upscale) == ((112, 64), "tiny-vsr", 4.0)


def test_the_2_25_route_rounds_like_the_pipeline():
    # 1.125 x, to the nearest multiple of 16 (Python's round), then x2
    assert upscaled_size(VSR, 864, 480, 2.25) == (1952, 1088)  # 972 -> 976, 540 -> 544
    assert upscaled_size(VSR, 832, 480, 2.25) == (1856, 1088)  # 936 -> 928 (58.5 rounds to 58)
    assert upscaled_size(VSR, 1280, 720, 2.0) == (2560, 1440)
    assert upscaled_size(VSR, 1290, 720, 2.0) == (2560, 1440)  # sides floored to 16 first


def test_make_plan_carries_the_upscaler_and_the_default_plans_without_one():
    request = TextToVideoInput(prompt="a fox", resolution="1080p")
    preset = get_preset("wan2.1-t2v-1.3b")
    plan = make_plan(request, preset, upscaler=VSR)
    assert (plan.gen_width, plan.gen_height, plan.upscaler, plan.upscale) == (
        848,
        480,
        "kandinsky6-vsr",
        2.25,
    )
    assert (plan.width, plan.height) == (1920, 1080)
    plain = make_plan(request, preset)
    assert (plain.upscaler, plain.upscale) == ("bicubic", 1.0)
    assert make_plan(request, preset, upscaler=ABSENT).upscaler == "bicubic"
    at_720p = make_plan(TextToVideoInput(prompt="a fox"), preset, upscaler=VSR)  # above the 1.3B's 832x480
    assert (at_720p.upscaler, at_720p.upscale) == ("kandinsky6-vsr", 2.0)
    assert (
        make_plan(TextToVideoInput(prompt="a fox"), get_preset("wan2.2-ti2v-5b"), upscaler=VSR).upscaler
        == "none"
    )
