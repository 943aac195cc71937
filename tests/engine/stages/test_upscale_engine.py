"""The upscaler stage in the engine: a 1080p render through the tiny VSR, the bicubic fallback when its weights
are missing (said in the job log and the output), and what the engine offers planning."""

from __future__ import annotations

import numpy as np
import pytest

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine, bicubic_line
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.engine.stages.upscale import build_tiny_upscaler
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext, decode_frames

REQUEST = TextToVideoInput(prompt="a red fox in the snow", resolution="1080p", seed=1)


def engine(upscaler_model: str, preset: str = "tiny-wan") -> DiffusersEngine:
    return DiffusersEngine(get_preset(preset), EngineOptions(device="cpu", upscaler_model=upscaler_model))


# 80 frames through the tiny VSR at x4 and two 1080p encodes: 25 s on an idle 2-core machine, minutes when loaded.
@pytest.mark.timeout(900)
def test_a_1080p_render_through_the_tiny_upscaler_is_exactly_1920x1080_and_names_it(tmp_path):
    ctx = RecordingContext()
    result = engine("tiny").render(REQUEST, ctx, tmp_path / "vsr.mp4")

    frames = decode_frames(result.path)
    assert frames.shape == (5 * 16, 1080, 1920, 3)
    assert (result.width, result.height, result.frames) == (1920, 1080, 80)
    assert result.extra["upscaled"] == "tiny-kandinsky6-vsr"
    # 112x64 is below every scale's cover of 1080p: the largest, x4 (448x256), then the output mapping
    assert any(line.startswith("upscaler tiny-kandinsky6-vsr: x4 to 448x256, 80 frames") for line in ctx.logs)
    assert any("upscaled x4 by tiny-kandinsky6-vsr" in line for line in ctx.logs)
    # The same request without the stage: the frames differ, so the stage's output is what was encoded
    bicubic = engine("/no/such/folder").render(REQUEST, RecordingContext(), tmp_path / "bicubic.mp4")
    assert np.abs(frames.astype(int) - decode_frames(bicubic.path).astype(int)).mean() > 5


def test_without_the_upscaler_weights_1080p_is_bicubic_and_the_log_says_how_to_get_them(tmp_path):
    ctx = RecordingContext()
    result = engine(str(tmp_path / "nowhere")).render(REQUEST, ctx, tmp_path / "out.mp4")

    assert decode_frames(result.path).shape == (80, 1080, 1920, 3)
    assert result.extra["upscaled"] == "bicubic"
    (line,) = [line for line in ctx.logs if line.startswith("upscale: bicubic")]
    assert "from 112x64 to 1920x1080" in line and "not on this machine" in line
    assert "run `framecast models pull kandinsky6-vsr`" in line


def test_a_real_presets_1080p_plan_is_bicubic_without_the_weights_and_learned_with_them(tmp_path):
    preset = get_preset("wan2.1-t2v-1.3b")
    options = EngineOptions(device="cpu", upscaler_model="framecast-test/no-such-vsr")  # in no cache
    spec, absent = DiffusersEngine(preset, options).upscaler_offer()
    plan = make_plan(REQUEST, preset, upscaler=spec)
    assert spec is not None and not spec.present and plan.upscaler == "bicubic"
    assert (plan.gen_width, plan.gen_height) == (848, 480)
    assert "framecast models pull kandinsky6-vsr" in bicubic_line(plan, spec, absent)

    build_tiny_upscaler().save_pretrained(tmp_path / "vsr")  # weights in a folder (its tiles are 128 px)
    spec, absent = DiffusersEngine(
        preset, EngineOptions(device="cpu", upscaler_model=str(tmp_path / "vsr"))
    ).upscaler_offer()
    plan = make_plan(REQUEST, preset, upscaler=spec)
    assert absent == "" and (plan.upscaler, plan.upscale) == ("kandinsky6-vsr", 2.25)


def test_a_family_that_upscales_itself_is_offered_no_stage():
    tiny = engine("tiny", "tiny-ltx2")  # LTX-2's two stages: a learned x2 latent upsample, then a refine
    assert tiny.model.upscales_itself
    spec, absent = tiny.upscaler_offer()
    assert spec is None and absent == ""
    plan = make_plan(REQUEST, tiny.preset, upscaler=spec)
    assert plan.upscaler == "bicubic"
    assert "upscales in its own pipeline" in bicubic_line(plan, spec, absent)


@pytest.mark.parametrize("resolution", ["360p", "720p"])
def test_an_output_the_model_draws_at_or_below_needs_no_upscaler(resolution):
    plan = make_plan(TextToVideoInput(prompt="a fox", resolution=resolution), get_preset("wan2.2-ti2v-5b"))
    assert (plan.upscaler, plan.upscale) == ("none", 1.0)
