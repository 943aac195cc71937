"""Compile buckets (buckets.py): the shapes a compiled engine serves, and that warmed shapes never recompile."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.planning import buckets, make_plan
from framecast.engine.presets import get_preset
from framecast.errors import ConfigError
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext


def test_frame_buckets_are_quarters_of_the_longest_clip_on_the_frame_rule():
    assert buckets.frame_buckets(get_preset("wan2.2-ti2v-5b")) == (33, 61, 93, 121)
    assert buckets.frame_buckets(get_preset("wan2.1-t2v-1.3b")) == (21, 41, 61, 81)
    for name in ("wan2.2-ti2v-5b", "wan2.1-t2v-1.3b", "wan2.2-t2v-a14b"):
        preset = get_preset(name)
        assert all((f - 1) % preset.frame_step == 0 for f in buckets.frame_buckets(preset))


def test_a_shot_generates_the_smallest_bucket_that_holds_it_and_other_plans_are_left_alone():
    preset = get_preset("wan2.2-ti2v-5b")
    plan = make_plan(TextToVideoInput(prompt="a fox"), preset)
    assert buckets.bucketed(plan, preset) == plan  # 5 s: the longest clip already
    short = dataclasses.replace(plan, frames=48, gen_frames=49, temporal="trim")
    assert buckets.bucketed(short, preset).gen_frames == 61
    assert buckets.bucketed(short, preset).frames == 48  # the output does not change
    chained = make_plan(TextToVideoInput(prompt="a fox", duration="10"), preset)
    assert buckets.bucketed(chained, preset) == chained


def test_a_chunked_model_has_one_frame_bucket_and_its_plans_are_left_alone():
    preset = get_preset("helios-14b")  # one chunk shape whatever the clip's length
    assert buckets.frame_buckets(preset) == (1449,)
    plan = make_plan(TextToVideoInput(prompt="a fox", duration="8"), preset)
    assert plan.gen_frames == 197 and buckets.bucketed(plan, preset) == plan


def test_warmup_shapes_cover_the_default_every_size_or_the_named_aspects_sizes():
    preset = get_preset("wan2.2-ti2v-5b")
    assert buckets.warmup_shapes(preset, "default") == [(1280, 736, 121)]  # 720p: crops to 1280x720
    every = buckets.warmup_shapes(preset, "all")
    # 16:9 and 9:16 have two sizes: the native one, and the 720p one that crops without resampling
    assert len(every) == len(set(every)) == 7 * 4
    named = buckets.warmup_shapes(preset, "9:16, 1:1")
    assert named == [(704, 1280, 121), (736, 1280, 121), (960, 960, 121)]
    for bad in ("", "portrait", "16:9,portrait"):
        with pytest.raises(ConfigError, match="FRAMECAST_COMPILE_WARMUP"):
            buckets.warmup_shapes(preset, bad)


@pytest.fixture
def counted_graphs():
    """A torch.compile backend that runs each graph eagerly and records the input shapes it was built for."""
    graphs: list[tuple] = []

    def backend(gm, example_inputs):
        graphs.append(tuple(tuple(x.shape) for x in example_inputs if isinstance(x, torch.Tensor)))
        return gm.forward

    limit = torch._dynamo.config.recompile_limit
    torch._dynamo.reset()
    yield graphs, backend
    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = limit


def test_a_compiled_engine_warms_its_shapes_at_start_and_renders_them_without_compiling(
    counted_graphs, tmp_path, monkeypatch
):
    graphs, backend = counted_graphs
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    options = EngineOptions(device="cpu", compile_warmup="1:1", data_dir=tmp_path / "data")
    engine = DiffusersEngine(get_preset("tiny-wan"), options)
    engine.load()
    seconds = engine.compile_and_warm(backend=backend)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(
        tmp_path / "data" / "compile-cache"
    )  # kept on restart
    assert list(seconds) == [(80, 80, 81)] and engine.compiled
    warmed = len(graphs)
    assert warmed >= 1
    assert torch._dynamo.config.recompile_limit >= 2 * 20 + 8

    square = TextToVideoInput(prompt="a fox", aspect_ratio="1:1", resolution="360p", seed=3)
    engine.render(square, RecordingContext(), tmp_path / "square.mp4")
    assert len(graphs) == warmed  # the warmed shape: no compile in the request

    # A 30-frame shot generates the 41-frame bucket (one new graph), and the video is still 30 frames.
    plan = make_plan(square, engine.preset)
    shot = dataclasses.replace(plan.shots[0], frames=30, duration=30 / plan.fps)
    short = dataclasses.replace(plan, frames=30, shots=(shot,))
    result = engine.render_plan(short, RecordingContext(), tmp_path / "short.mp4")
    assert result.frames == 30
    assert len(graphs) == warmed + 1
    # Its tokens: 41 frames are 11 latent frames of 5 x 5 patches (a 33-frame graph would have 9 x 25 = 225).
    assert any(11 * 25 in shape for shape in graphs[-1])


def test_a_chained_preset_also_warms_its_image_to_video_continuation(counted_graphs, tmp_path):
    graphs, backend = counted_graphs
    engine = DiffusersEngine(get_preset("tiny-wan-ti2v"), EngineOptions(device="cpu", compile_warmup="16:9"))
    engine.load()
    engine.compile_and_warm(backend=backend)
    warmed = len(graphs)
    assert warmed >= 2  # text-to-video (CFG batch of 2) and the continuation (two forwards of 1)

    request = TextToVideoInput(prompt="a fox", resolution="360p", seed=3)  # 5 s: three chained segments
    ctx = RecordingContext()
    result = engine.render(request, ctx, tmp_path / "chain.mp4")
    assert any("3 segments" in line for line in ctx.logs) and result.frames == 120
    assert len(graphs) == warmed
