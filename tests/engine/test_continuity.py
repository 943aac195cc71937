"""Colour matching at chained joins and the drift report (continuity.py), and a chained render through the
reference image-to-video pipeline."""

from __future__ import annotations

import torch

from framecast.engine import EngineOptions
from framecast.engine.continuity import drift, match_colour, same_picture
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families.base import Steps, to_pil
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext


def test_a_matched_segment_starts_with_the_colours_of_the_frame_it_continues():
    gen = torch.Generator().manual_seed(0)
    reference = torch.rand(3, 16, 16, generator=gen) * 0.5 + 0.25
    segment = (torch.rand(5, 3, 16, 16, generator=gen) * 0.3 + 0.1).clamp(0, 1)  # darker, flatter
    matched = match_colour(segment, reference)
    assert torch.allclose(matched[0].mean(dim=(1, 2)), reference.mean(dim=(1, 2)), atol=2e-3)
    # The spread moves toward the reference's by at most 10%: here the segment is far flatter, so by 10%.
    ratio = matched[0].std(dim=(1, 2)) / segment[0].std(dim=(1, 2))
    assert torch.allclose(ratio, torch.full((3,), 1.1), atol=1e-3)
    close = segment * 1.05
    assert torch.allclose(
        match_colour(close, segment[0])[0].std(dim=(1, 2)), segment[0].std(dim=(1, 2)), atol=1e-4
    )
    assert matched.shape == segment.shape and matched.min() >= 0 and matched.max() <= 1
    # one affine map per channel for the whole segment: the frames keep their differences' direction
    assert float((matched[1] - matched[0]).flatten() @ (segment[1] - segment[0]).flatten()) > 0


def test_only_a_reproduction_of_the_frame_up_to_a_colour_offset_counts_as_the_same_picture():
    gen = torch.Generator().manual_seed(1)
    reference = torch.rand(3, 16, 16, generator=gen)
    tinted = (reference + torch.tensor([0.05, -0.03, 0.02]).view(3, 1, 1)).clamp(0, 1)
    assert same_picture(tinted, reference)
    assert not same_picture(torch.rand(3, 16, 16, generator=gen), reference)


def test_the_drift_report_gives_a_mean_colour_and_a_sharpness_per_second():
    video = torch.zeros(40, 3, 8, 8)
    video[16:] = 0.5  # the second second onwards is grey: a colour jump of 0.5
    video[:, :, ::2, ::2] += 0.2  # a pattern: some sharpness
    report = drift(video, fps=16)
    assert len(report.mean_rgb) == len(report.sharpness) == 3  # 16 + 16 + 8 frames
    assert abs(report.colour_range - 0.5) < 1e-6 and all(s > 0 for s in report.sharpness)
    assert "colour range 0.5000" in report.line()


def test_each_chained_segment_is_the_reference_continuation_of_the_last_frame_then_colour_matched():
    engine = DiffusersEngine(get_preset("tiny-wan-ti2v"), EngineOptions(device="cpu"))
    request = TextToVideoInput(prompt="a red fox", resolution="360p", aspect_ratio="1:1", seed=4)
    plan = make_plan(request, engine.preset)
    assert plan.segments == 3 and [j["frame"] for j in plan.joins()] == [41, 81]
    ctx = RecordingContext()
    video = engine.generate(plan, ctx).video
    assert video.shape[0] == 3 * 40 + 1
    assert any(line.startswith("continuity:") for line in ctx.logs)

    # Rebuilt by hand from the diffusers pipelines: segment 1 by the family, then each continuation by
    # WanImageToVideoPipeline from the previous segment's last frame (as a PIL image), colour-matched to it when
    # it reproduces that frame. Random weights reproduce nothing, and the log says so.
    model = engine.model
    with torch.inference_mode():
        expected = model.generate(plan, Steps(RecordingContext(), 0, 9)).video
        for segment in (1, 2):
            kwargs = model.call_kwargs(plan, None, segment)
            more = model.continuation()(image=to_pil(expected[-1]), **kwargs).frames[0]
            assert not same_picture(more[0], expected[-1])
            expected = torch.cat([expected, more[1:]])
    assert torch.allclose(video, expected, atol=1e-5)
    assert sum("not colour-matched" in line for line in ctx.logs) == 2
