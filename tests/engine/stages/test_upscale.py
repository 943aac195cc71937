"""The upscaler stage (stages/upscale.py) on the tiny Kandinsky6SRPipeline: equal to the pipeline called as its
authors' docs call it, at exactly the size planning computes, in windows for long clips, cancellable, seeded."""

from __future__ import annotations

import shutil

import pytest
import torch

from framecast.engine.planning.upscale import upscaled_size
from framecast.engine.stages import UPSCALER_NAME
from framecast.engine.stages.upscale import (
    Upscaler,
    build_tiny_upscaler,
    crossfade,
    frame_windows,
    load_upscaler,
    upscaler_offer,
)
from framecast.errors import ModelUnavailableError, RenderStopped
from tests.engine.conftest import Log


@pytest.fixture(scope="module")
def pipe():
    return build_tiny_upscaler()


@pytest.fixture(scope="module")
def stage(pipe):
    return Upscaler(pipe, "tiny-vsr")


def clip(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand((frames, 3, height, width), generator=torch.Generator().manual_seed(seed))


def reference(pipe, video: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    """The diffusers docs' call: ``pipe(video=..., resolution_scale=..., num_inference_steps=2)``."""
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(
        video=video, resolution_scale=scale, num_inference_steps=2, generator=generator, output_type="pt"
    ).frames[0]


# (scale, input height, width): each clip holds the tile the pipeline picks at that scale (128 px tiles / scale)
SIZES = [(2.0, 64, 64), (2.25, 64, 80), (4.0, 32, 64)]


@pytest.mark.parametrize(("scale", "height", "width"), SIZES)
def test_the_stage_is_the_pipeline_called_as_its_docs_show_at_the_planned_size(
    pipe, stage, scale, height, width
):
    video = clip(5, height, width)
    out = stage.upscale(video, scale, seed=7, log=Log())
    assert torch.equal(out, reference(pipe, video, scale, 7))
    assert (out.shape[-1], out.shape[-2]) == upscaled_size(stage.spec, width, height, scale)
    assert out.shape[:2] == (5, 3) and out.dtype == torch.float32 and 0 <= out.min() <= out.max() <= 1


def test_a_clip_off_the_frame_rule_is_padded_with_its_last_frame_and_cut_back(pipe, stage):
    video = clip(7, 32, 64)
    out = stage.upscale(video, 4.0, seed=3, log=Log())
    padded = torch.cat([video, video[-1:], video[-1:]])  # 9 = 1 + 4 * 2 frames
    assert out.shape[0] == 7
    assert torch.equal(out, reference(pipe, padded, 4.0, 3)[:7])


def test_the_stage_is_deterministic_per_seed(stage):
    video = clip(5, 32, 64)
    first, again, other = (stage.upscale(video, 4.0, seed=s, log=Log()) for s in (1, 1, 2))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_windows_are_the_fewest_shortest_on_the_rule_that_cover_a_long_clip_with_enough_overlap():
    assert frame_windows(121, 121, 8, 4) == [(0, 121)]
    assert frame_windows(81, 121, 8, 4) == [(0, 81)]
    assert frame_windows(129, 121, 8, 4) == [(0, 69), (60, 129)]  # Helios's 5 s: not two of 121
    assert frame_windows(193, 121, 8, 4) == [(0, 101), (92, 193)]  # 8 s at 24 fps
    assert frame_windows(241, 121, 8, 4) == [(0, 89), (76, 165), (152, 241)]  # 10 s at 24 fps
    for frames in range(125, 800, 4):
        windows = frame_windows(frames, 121, 8, 4)
        lengths = {end - start for start, end in windows}
        assert windows[0][0] == 0 and windows[-1][1] == frames and len(lengths) == 1
        (length,) = lengths
        assert length <= 121 and (length - 1) % 4 == 0 and all(start % 4 == 0 for start, _ in windows)
        assert all(b[0] <= a[1] - 8 for a, b in zip(windows, windows[1:], strict=False))
        # at most one more than windows of 121 with starts anywhere would need (starts are on the step)
        assert len(windows) <= -(-(frames - 8) // (121 - 8)) + 1


def test_neighbouring_windows_cross_fade_to_a_total_weight_of_one():
    windows = [(0, 13), (4, 17)]
    first, second = crossfade(windows, 0), crossfade(windows, 1)
    assert torch.equal(first[:4], torch.ones(4)) and torch.equal(second[-4:], torch.ones(4))
    assert torch.allclose(first[4:] + second[:9], torch.ones(9))
    assert (first[4:].diff() < 0).all() and (second[:9].diff() > 0).all()


def test_a_long_clip_is_upscaled_in_windows_each_the_pipeline_seeded_seed_plus_its_index(pipe):
    stage = Upscaler(pipe, "tiny-vsr", max_frames=13)
    video = clip(17, 32, 64)
    log = Log()
    out = stage.upscale(video, 4.0, seed=5, log=log)
    first, second = reference(pipe, video[:13], 4.0, 5), reference(pipe, video[4:], 4.0, 6)
    assert torch.equal(out[:4], first[:4]) and torch.equal(out[13:], second[9:])
    fade_in = crossfade([(0, 13), (4, 17)], 1)[:9].view(-1, 1, 1, 1)
    assert torch.allclose(out[4:13], first[4:] * (1 - fade_in) + second[:9] * fade_in, atol=1e-6)
    assert "2 window(s)" in log[-1]


def test_cancel_stops_the_stage_before_its_next_transformer_step(pipe):
    stage = Upscaler(pipe, "tiny-vsr")
    asked: list[int] = []

    def should_stop() -> str | None:
        asked.append(1)
        return "cancelled" if len(asked) > 1 else None

    with pytest.raises(RenderStopped, match="cancelled"):
        stage.upscale(clip(5, 32, 64), 4.0, seed=1, log=Log(), should_stop=should_stop)
    assert len(asked) == 2  # the first step ran, the second was refused
    video = clip(5, 32, 64)  # and the hook is gone: the next call is the pipeline's again
    assert torch.equal(stage.upscale(video, 4.0, seed=1, log=Log()), reference(pipe, video, 4.0, 1))


def test_the_tiny_model_is_built_from_fixed_seeds_without_touching_the_global_generator():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b = build_tiny_upscaler(), build_tiny_upscaler()
    assert torch.equal(torch.rand(3), expected)
    for (name, x), (_, y) in zip(
        a.transformer.state_dict().items(), b.transformer.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name


def test_a_saved_folder_is_offered_from_its_configs_and_loads_to_the_same_stage(tmp_path, pipe, stage):
    pipe.save_pretrained(tmp_path / "vsr")
    spec, absent = upscaler_offer(str(tmp_path / "vsr"))
    assert absent == "" and spec.present and spec.name == UPSCALER_NAME
    assert (spec.snap, spec.tile_sizes, spec.scales) == (
        16,
        ((128, 128), (128, 256), (256, 128)),
        (2.0, 2.25, 4.0),
    )
    loaded = load_upscaler(str(tmp_path / "vsr"))
    video = clip(5, 32, 64)
    assert torch.equal(loaded.upscale(video, 4.0, 2, log=Log()), stage.upscale(video, 4.0, 2, log=Log()))


def test_missing_or_incomplete_weights_are_offered_as_absent_with_the_reason(tmp_path, pipe):
    spec, absent = upscaler_offer(str(tmp_path / "nowhere"))
    assert not spec.present and "not on this machine" in absent
    with pytest.raises(ModelUnavailableError, match=f"framecast models pull {UPSCALER_NAME}"):
        load_upscaler(str(tmp_path / "nowhere"))
    pipe.save_pretrained(tmp_path / "partial")
    shutil.rmtree(tmp_path / "partial" / "transformer")
    spec, absent = upscaler_offer(str(tmp_path / "partial"))
    assert not spec.present and "incomplete (missing transformer/)" in absent
