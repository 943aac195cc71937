from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from framecast.engine.encode import encode_mp4, fit_audio


def grey_frames(count: int, width: int, height: int):
    return (np.full((height, width, 3), 10 + i % 200, dtype=np.uint8) for i in range(count))


def test_mp4_has_exact_frames_fps_duration_and_faststart(tmp_path):
    path = tmp_path / "clip.mp4"
    size = encode_mp4(path, grey_frames(192, 64, 36), width=64, height=36, fps=24, frame_count=192)

    assert size == path.stat().st_size
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while downloading
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 24
        assert stream.duration * stream.time_base == 8
        assert sum(1 for _ in container.decode(video=0)) == 192


def test_audio_track_is_cut_or_padded_to_the_video_duration(tmp_path):
    rate = 16000
    for seconds in (3.0, 7.5):  # shorter and longer than the 5 s video
        path = tmp_path / f"clip-{seconds}.mp4"
        waveform = 0.1 * np.sin(np.linspace(0, 2000, int(seconds * rate))).astype(np.float32)
        encode_mp4(
            path,
            grey_frames(80, 32, 32),
            width=32,
            height=32,
            fps=16,
            frame_count=80,
            audio=np.stack([waveform, waveform]),
            sample_rate=rate,
        )
        with av.open(str(path)) as container:
            audio = container.streams.audio[0]
            assert audio.codec_context.name == "aac" and audio.rate == rate and audio.channels == 2
            assert abs(audio.duration * audio.time_base - 5) <= Fraction(1024, rate)


def test_fit_audio_gives_exactly_the_samples_asked_for():
    assert fit_audio(np.ones(10), 4).shape == (1, 4)
    padded = fit_audio(np.ones((2, 3)), 5)
    assert padded.shape == (2, 5) and padded[:, 3:].sum() == 0


def test_odd_dimensions_and_wrong_frame_counts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="even"):
        encode_mp4(tmp_path / "odd.mp4", grey_frames(1, 33, 32), width=33, height=32, fps=24, frame_count=1)
    with pytest.raises(ValueError, match="expected 5"):
        encode_mp4(tmp_path / "short.mp4", grey_frames(4, 32, 32), width=32, height=32, fps=24, frame_count=5)


def test_the_same_frames_encode_to_the_same_bytes(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(rng.random((90, 120, 3)) * 20 + 120).astype(np.uint8) for _ in range(24)]
    frames = [np.ascontiguousarray(np.repeat(np.repeat(f, 4, 0), 3, 1)) for f in frames]  # 360x360
    digests = set()
    for run in range(4):
        path = tmp_path / f"{run}.mp4"
        encode_mp4(path, iter(frames), width=360, height=360, fps=24, frame_count=24)
        digests.add(path.read_bytes())
    assert len(digests) == 1


def test_colours_survive_the_round_trip_in_a_bt709_tagged_stream(tmp_path):
    colour = np.array([200, 30, 90], dtype=np.uint8)
    frames = (np.broadcast_to(colour, (64, 64, 3)).copy() for _ in range(12))
    path = tmp_path / "colour.mp4"
    encode_mp4(path, frames, width=64, height=64, fps=24, frame_count=12)
    with av.open(str(path)) as container:
        context = container.streams.video[0].codec_context
        assert (context.colorspace, context.color_primaries, context.color_trc) == (1, 1, 1)
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(decoded[32, 32].astype(int) - colour).max() <= 3
