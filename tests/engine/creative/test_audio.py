import numpy as np
import pytest

from framecast.engine.creative.audio import (
    AUDIO_LICENCE,
    AUDIO_REPO,
    AudioStage,
    build_tiny_audio,
    describe_audio,
    wants_dialogue,
)
from framecast.engine.presets import joint_audio_presets
from framecast.errors import ModelUnavailableError, RenderStopped
from tests.engine.conftest import Log


@pytest.fixture(scope="module")
def stage():
    return AudioStage(build_tiny_audio(), steps=2)


def test_audio_description_has_the_scene_a_mood_and_its_sounds():
    text = describe_audio("A lonely detective walks down a city street at night in the rain.")
    assert text == (
        "Melancholic ambient piano background music with rain falling, distant city traffic, footsteps and "
        "street ambience. Scene: A lonely detective walks down a city street at night in the rain. "
        "High quality, stereo."
    )


def test_audio_description_defaults_when_no_keyword_matches():
    text = describe_audio("An abstract shape")
    assert text.startswith("Cinematic ambient background music with natural ambience of the scene.")


def test_dialogue_is_detected():
    assert wants_dialogue('A woman says "hello" to her neighbour')
    assert wants_dialogue("Two friends talking over coffee")
    assert not wants_dialogue("A fox runs through the snow")


def test_licence_is_named():
    assert AUDIO_REPO == "stabilityai/stable-audio-open-1.0"
    assert "Stability AI Community License" in AUDIO_LICENCE


@pytest.mark.parametrize(("frames", "fps"), [(120, 24), (121, 24), (160, 16), (250, 25)])
def test_waveform_has_exactly_the_videos_duration(stage, frames, fps):
    waveform, rate = stage.generate("A fox runs through the snow", frames, fps, seed=1, log=Log())
    assert rate == 16000
    assert waveform.dtype == np.float32 and waveform.ndim == 2 and waveform.shape[0] == 2
    assert waveform.shape[1] == round(frames * rate / fps)
    assert np.isfinite(waveform).all() and np.abs(waveform).max() > 0


def test_waveform_is_deterministic_per_seed(stage):
    first, _ = stage.generate("Waves on a beach", 120, 24, seed=3, log=Log())
    again, _ = stage.generate("Waves on a beach", 120, 24, seed=3, log=Log())
    other, _ = stage.generate("Waves on a beach", 120, 24, seed=4, log=Log())
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_log_names_the_description_and_that_dialogue_needs_joint_audio(stage):
    log = Log()
    stage.generate('An old man says "welcome home"', 48, 24, seed=1, log=log)
    assert log[0].startswith("audio stage: ") and 'Scene: An old man says "welcome home"' in log[0]
    assert f"dialogue needs a joint-audio preset ({joint_audio_presets()})" in log[1]
    assert joint_audio_presets().startswith("ltx-2, ltx-2.5")


def test_stop_request_ends_the_audio_stage(stage):
    with pytest.raises(RenderStopped) as info:
        stage.generate("A fox", 48, 24, seed=1, log=Log(), should_stop=lambda: "cancelled")
    assert info.value.reason == "cancelled"


def test_longer_than_the_model_is_an_error(stage):
    with pytest.raises(ValueError, match="at most 10.5"):
        stage.generate("A fox", 11 * 24, 24, seed=1, log=Log())


def test_saved_pipeline_loads_and_missing_weights_say_how_to_fetch(tmp_path, stage):
    stage.pipe.save_pretrained(tmp_path / "audio")
    loaded = AudioStage.load(str(tmp_path / "audio"), steps=2)
    waveform, _ = loaded.generate("Rain on a roof", 72, 24, seed=9, log=Log())
    # Same weights, same seed: equal up to float rounding (a loaded model's tensors are laid out anew).
    np.testing.assert_allclose(
        waveform, stage.generate("Rain on a roof", 72, 24, seed=9, log=Log())[0], atol=1e-5
    )
    with pytest.raises(ModelUnavailableError, match="framecast models pull stable-audio-open"):
        AudioStage.load("framecast-test/no-such-audio")


def test_aac_track_of_the_video_duration(stage, tmp_path):
    import av

    from framecast.engine.encode import AAC_FRAME, encode_mp4

    frames, fps = 120, 24
    waveform, rate = stage.generate("Birds in a forest", frames, fps, seed=2, log=Log())
    video = (np.zeros((frames, 64, 64, 3)) + 128).astype(np.uint8)
    path = tmp_path / "out.mp4"
    encode_mp4(
        path, video, width=64, height=64, fps=fps, frame_count=frames, audio=waveform, sample_rate=rate
    )
    with av.open(str(path)) as container:
        (track,) = container.streams.audio
        assert track.codec_context.name == "aac"
        decoded = sum(frame.samples for frame in container.decode(track))
    assert abs(decoded - frames * rate / fps) <= AAC_FRAME


# --- on the tiny presets, through the engine ---


def _probe(path):
    import av

    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        tracks = [(s.codec_context.name, s.duration * s.time_base, s.rate) for s in container.streams.audio]
    return frames, tracks


@pytest.mark.parametrize("engine", ["tiny_wan", "tiny_ltx2"])
@pytest.mark.parametrize("switch", [True, False])
def test_audio_switch_gives_one_aac_track_of_the_videos_duration_or_none(request, engine, switch, tmp_path):
    from fractions import Fraction

    from framecast.schema import TextToVideoInput
    from tests.engine.conftest import RecordingContext

    body = TextToVideoInput(
        prompt="Rain on a city street at night", resolution="360p", seed=4, generate_audio_switch=switch
    )
    ctx = RecordingContext()
    result = request.getfixturevalue(engine).render(body, ctx, tmp_path / "out.mp4")
    frames, tracks = _probe(result.path)
    assert frames == result.frames and result.has_audio is switch
    staged = [line for line in ctx.logs if line.startswith("audio stage: ")]
    if not switch:
        assert tracks == [] and staged == []
        return
    ((codec, seconds, rate),) = tracks
    assert codec == "aac" and abs(seconds - Fraction(result.frames, result.fps)) <= Fraction(1024, rate)
    # tiny-wan renders video only, so the audio stage made the track; tiny-ltx2 made its own.
    assert bool(staged) is (engine == "tiny_wan")


def test_multi_clip_with_joint_audio_has_one_track_over_the_whole_video(tiny_ltx2, tmp_path):
    from fractions import Fraction

    from framecast.schema import TextToVideoInput
    from tests.engine.conftest import RecordingContext

    body = TextToVideoInput(
        prompt="Waves on a beach at dawn",
        resolution="360p",
        duration="8",
        seed=5,
        generate_audio_switch=True,
        generate_multi_clip_switch=True,
    )
    result = tiny_ltx2.render(body, RecordingContext(), tmp_path / "out.mp4")
    frames, tracks = _probe(result.path)
    assert len(result.shots) == 3 and frames == result.frames == 8 * 24
    ((codec, seconds, rate),) = tracks
    assert codec == "aac" and abs(seconds - 8) <= Fraction(1024, rate)


def test_audio_keywords_match_whole_words_only():
    assert "soft purring" not in describe_audio("A boy tries to catch a ball in the season's first snow")
    assert "soft purring" in describe_audio("Two cats nap by the window")
