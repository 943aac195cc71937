from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from framecast.engine.planning import OUTPUT_SIZES, generation_frames, make_plan, merge_negative
from framecast.engine.presets import all_presets, get_preset
from framecast.errors import InputError
from framecast.schema import SEED_MAX, AspectRatio, Duration, Resolution, TextToVideoInput

# PixVerse v5.5's table, written out again so a typo in OUTPUT_SIZES cannot agree with itself.
TABLE = {
    "360p": ["640x360", "480x360", "360x360", "360x480", "360x640"],
    "540p": ["960x540", "720x540", "540x540", "540x720", "540x960"],
    "720p": ["1280x720", "960x720", "720x720", "720x960", "720x1280"],
    "1080p": ["1920x1080", "1440x1080", "1080x1080", "1080x1440", "1080x1920"],
}
ASPECTS = ["16:9", "4:3", "1:1", "3:4", "9:16"]
CASES = [
    (resolution, aspect, size, duration)
    for resolution, sizes in TABLE.items()
    for aspect, size in zip(ASPECTS, sizes, strict=True)
    for duration in ("5", "8", "10")
    if not (resolution == "1080p" and duration == "10")
]
PRESETS = [
    "wan2.2-ti2v-5b",
    "wan2.1-t2v-1.3b",
    "wan2.2-t2v-a14b",
    "ltx-2",
    "ltx-2.5",
    "tiny-wan",
    "tiny-ltx2",
]


def request(**fields) -> TextToVideoInput:
    return TextToVideoInput.model_validate({"prompt": "a red fox in the snow", **fields})


@pytest.mark.parametrize(("resolution", "aspect", "size", "duration"), CASES)
def test_plan_has_the_exact_size_frames_and_fps_of_the_table(resolution, aspect, size, duration):
    for name in PRESETS:
        preset = get_preset(name)
        plan = make_plan(request(resolution=resolution, aspect_ratio=aspect, duration=duration), preset)
        assert f"{plan.width}x{plan.height}" == size
        assert plan.fps == preset.fps
        assert plan.frames == int(duration) * preset.fps
        assert plan.duration == int(duration)
        # generation: the preset's multiple and frame rule, its pixel budget, the output's aspect
        assert plan.gen_width % preset.size_multiple == 0 and plan.gen_height % preset.size_multiple == 0
        assert (plan.gen_frames - 1) % preset.frame_step == 0
        assert (plan.window_frames or plan.gen_frames) <= preset.max_frames  # no pass longer than the model's
        assert abs(plan.gen_width * plan.gen_height / preset.native_pixels - 1) < 0.15
        # rounding each side to the multiple is the only aspect error
        aspect_error = abs(plan.gen_width / plan.gen_height / (plan.width / plan.height) - 1)
        assert aspect_error < preset.size_multiple / min(plan.gen_width, plan.gen_height)
        if plan.temporal == "trim":
            assert plan.frames <= plan.gen_frames < plan.frames + preset.frame_step
        elif plan.temporal == "chain":
            covered = plan.gen_frames + (plan.segments - 1) * (plan.gen_frames - 1)
            assert plan.frames <= covered < plan.frames + plan.gen_frames - 1
        elif plan.temporal == "window":
            # The whole clip at once, in windows of the model's longest clip that tile it exactly.
            assert plan.frames <= plan.gen_frames < plan.frames + preset.frame_step
            assert plan.window_frames <= preset.max_frames < plan.gen_frames
            assert plan.windows[0] == 0 and plan.windows[-1] + plan.window_frames == plan.gen_frames
        else:
            # A long clip of shots of one subject: the creative shots stage splits it (tested with the engine).
            assert plan.temporal == "shots" and plan.gen_frames < plan.frames


@pytest.mark.parametrize("aspect", ASPECTS)
def test_1080p_for_10_seconds_is_rejected_by_the_schema_before_the_engine(aspect):
    with pytest.raises(ValidationError, match="1080p videos are limited to 5 or 8 seconds"):
        request(resolution="1080p", aspect_ratio=aspect, duration="10")


def test_output_sizes_cover_every_resolution_and_aspect():
    assert {(r, a) for r in Resolution for a in AspectRatio} == {
        (r, a) for r, sizes in OUTPUT_SIZES.items() for a in sizes
    }


def test_5_seconds_at_24_fps_generates_121_frames_and_drops_the_last():
    plan = make_plan(request(), get_preset("wan2.2-ti2v-5b"))
    assert (plan.frames, plan.gen_frames, plan.temporal) == (120, 121, "trim")
    assert (plan.gen_width, plan.gen_height) == (1280, 736)  # 720p: a crop to 1280x720 (test_upscale_plan.py)


def test_durations_beyond_the_model_are_generated_in_full_never_shortened_and_stretched_only_when_asked():
    assert generation_frames(get_preset("wan2.2-ti2v-5b"), 240) == (121, "chain")
    assert generation_frames(get_preset("wan2.1-t2v-1.3b"), 160) == (161, "window")
    assert generation_frames(get_preset("wan2.2-t2v-a14b"), 128) == (129, "window")
    assert generation_frames(get_preset("ltx-2"), 240) == (241, "trim")
    assert generation_frames(get_preset("wan2.1-t2v-1.3b"), 160, stretch=True) == (81, "stretch")
    assert generation_frames(get_preset("helios-14b"), 240) == (261, "trim")  # 8 chunks of 33, cut to 4k + 1
    ten = make_plan(request(duration="10"), get_preset("wan2.2-ti2v-5b"))
    assert (ten.frames, ten.gen_frames, ten.segments) == (240, 121, 2)  # 121 + 120 = 241 frames
    assert ten.joins() == [{"frame": 121, "how": "continues from the frame before"}]
    windowed = make_plan(request(duration="10"), get_preset("wan2.1-t2v-1.3b"))
    assert (windowed.gen_frames, windowed.window_frames, windowed.windows) == (161, 81, (0, 40, 80))
    assert [j["frames"] for j in windowed.joins()] == [[40, 80], [80, 120]]


@pytest.mark.parametrize("name", [p.name for p in all_presets()])
@pytest.mark.parametrize("duration", ["8", "10"])
def test_no_preset_stretches_a_long_clip_unless_the_operator_asks(name, duration):
    preset = get_preset(name)
    assert preset.extend != "stretch"
    plan = make_plan(request(duration=duration), preset)
    assert plan.temporal != "stretch"
    assert make_plan(request(duration=duration), preset, stretch=True).temporal in ("trim", "stretch")


WINDOW_CASES = [(f, w) for f in (85, 129, 161, 193, 241, 481) for w in (41, 81, 121) if f > w]


@pytest.mark.parametrize(("frames", "window"), WINDOW_CASES)
def test_windows_tile_the_clip_on_the_frame_rule_each_sharing_a_quarter_with_its_neighbour(frames, window):
    from framecast.engine.planning.plan import window_starts

    starts = window_starts(frames, window, 4)
    quarter = math.ceil((window - 1) / 4)
    assert starts[0] == 0 and starts[-1] + window == frames and all(s % 4 == 0 for s in starts)
    # Neighbours share at least a quarter of a window (less the rounding of a start to the frame rule) ...
    assert all(a + window - b >= quarter - 2 for a, b in zip(starts, starts[1:], strict=False))
    # ... with the fewest windows that can: one fewer, spread as evenly, could not.
    if len(starts) > 2:
        assert (frames - window) / (len(starts) - 2) > window - 1 - quarter


def test_1080p_is_upscaled_from_the_native_pixel_count():
    plan = make_plan(request(resolution="1080p"), get_preset("wan2.2-ti2v-5b"))
    assert plan.gen_width * plan.gen_height < plan.width * plan.height


def test_seed_is_kept_when_given_and_drawn_in_range_when_absent():
    preset = get_preset("tiny-wan")
    assert make_plan(request(seed=42), preset).seed == 42
    drawn = make_plan(request(), preset, rng_seed=7).seed
    assert 0 <= drawn <= SEED_MAX
    assert make_plan(request(), preset, rng_seed=7).seed == drawn
    assert make_plan(request(seed=drawn), preset).shots[0].seed == drawn


def test_negative_prompt_merges_the_users_with_the_presets_default():
    preset = get_preset("wan2.1-t2v-1.3b")
    plan = make_plan(request(negative_prompt="dogs, "), preset)
    assert plan.negative_prompt.startswith("dogs, Bright tones")
    assert merge_negative("", "") == ""
    assert make_plan(request(), preset).negative_prompt == preset.negative_prompt


def test_audio_on_a_video_only_model_is_a_clear_input_error():
    with pytest.raises(InputError, match="generate_audio_switch"):
        make_plan(request(generate_audio_switch=True), get_preset("wan2.2-ti2v-5b"))
    assert make_plan(request(generate_audio_switch=True), get_preset("tiny-ltx2")).audio == "joint"
    separate = make_plan(request(generate_audio_switch=True), get_preset("tiny-wan"), separate_audio=True)
    assert separate.audio == "separate"
    assert make_plan(request(), get_preset("ltx-2")).audio == "none"


def test_creative_stages_rewrite_the_plan_in_order():
    from framecast.engine.planning import with_prompts

    def shout(req, plan):
        return with_prompts(plan, plan.prompt.upper(), plan.negative_prompt)

    def exclaim(req, plan):
        return with_prompts(plan, plan.prompt + "!", plan.negative_prompt)

    plan = make_plan(request(), get_preset("tiny-wan"), stages=[shout, exclaim])
    assert plan.prompt == "A RED FOX IN THE SNOW!"
    assert plan.shots[0].prompt == plan.prompt


def test_every_registered_preset_plans_every_duration():
    for preset in all_presets():
        for duration in Duration:
            plan = make_plan(request(duration=duration.value), preset)
            assert plan.frames == duration.seconds * preset.fps


def test_a_two_stage_plan_generates_on_a_64_grid_and_counts_its_refining_steps():
    for name in ("ltx-2", "ltx-2.5", "ltx-2.5-distilled"):
        preset = get_preset(name)
        assert preset.two_stage is not None and preset.size_multiple == 64
        for aspect in ASPECTS:
            plan = make_plan(request(resolution="720p", aspect_ratio=aspect), preset)
            # stage 1 at half the size still lands on the VAE's 32-pixel grid
            assert (plan.gen_width // 2) % 32 == 0 and (plan.gen_height // 2) % 32 == 0
            assert plan.refine_steps == preset.two_stage.steps == 3
    assert make_plan(request(), get_preset("tiny-ltx2")).refine_steps == 0
    sixteen_nine = make_plan(request(), get_preset("ltx-2"))
    # the authors' stage 1 of 768x512 doubled, at 16:9: stage 1 832x480
    assert (sixteen_nine.gen_width, sixteen_nine.gen_height) == (1664, 960)
