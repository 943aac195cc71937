from __future__ import annotations

import av
import pytest

from framecast.config import Settings
from framecast.engine import EngineOptions, commands, create_engine
from framecast.engine.instant import InstantEngine
from framecast.errors import ModelUnavailableError, RenderStopped
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext


def test_models_list_shows_every_preset_with_size_licence_and_weights():
    table = commands.models_list(EngineOptions())
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["NAME", "SIZE", "WEIGHTS", "LICENCE"]
    ltx = next(line for line in lines if line.startswith("ltx-2 "))
    assert "90 GB" in ltx and "Community Licence" in ltx
    assert "built in" in next(line for line in lines if line.startswith("tiny-wan "))


def test_models_list_shows_each_variant_with_its_tradeoff_on_the_next_line():
    lines = commands.models_list(EngineOptions()).splitlines()
    turbo = next(i for i, line in enumerate(lines) if line.startswith("wan2.2-t2v-a14b-turbo "))
    assert "126 GB" in lines[turbo]  # the base model's weights
    assert lines[turbo + 1].startswith("    trade-off: Lightning 4-step LoRAs")
    fbc = next(i for i, line in enumerate(lines) if line.startswith("wan2.1-t2v-1.3b-fbc "))
    assert lines[fbc + 1].startswith("    trade-off: First Block Cache")
    base = next(i for i, line in enumerate(lines) if line.startswith("wan2.1-t2v-1.3b "))
    assert not lines[base + 1].startswith("    trade-off")


def test_models_list_shows_the_auxiliary_models_and_where_they_come_from(tmp_path):
    folder = tmp_path / "my-llm"
    folder.mkdir()
    lines = commands.models_list(EngineOptions(prompt_llm=str(folder))).splitlines()

    audio = next(line for line in lines if line.startswith("stable-audio-open "))
    assert "stabilityai/stable-audio-open-1.0" in audio
    llm = next(line for line in lines if line.startswith("prompt-llm "))
    assert "local folder" in llm and str(folder) in llm


def test_pulling_an_auxiliary_model_while_offline_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    settings = EngineOptions(audio_model="framecast-test/no-such-audio")

    with pytest.raises(
        ModelUnavailableError, match="^Could not download framecast-test/no-such-audio for the "
    ):
        commands.models_pull(settings, "stable-audio-open")


def test_verify_of_a_tiny_model_needs_no_weights():
    assert "built in" in commands.models_verify(EngineOptions(), "tiny-ltx2")


def test_generate_renders_through_the_configured_engine(tmp_path, capsys):
    out = tmp_path / "fox.mp4"
    request = TextToVideoInput(prompt="a fox", resolution="360p", aspect_ratio="9:16", seed=1)
    result = commands.generate(create_engine(Settings(model="tiny-wan", device="cpu")), request, out)
    assert result.path == out and (result.width, result.height) == (360, 640)
    assert "denoising" in capsys.readouterr().err  # the tqdm bar


def test_instant_engine_writes_a_small_valid_mp4_and_honours_cancel(tmp_path):
    engine = InstantEngine(steps=3)
    request = TextToVideoInput(prompt="a fox", duration="8")
    ctx = RecordingContext()
    result = engine.render(request, ctx, tmp_path / "a.mp4")
    assert ctx.steps == [(1, 3), (2, 3), (3, 3)]
    with av.open(str(result.path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (128, 72)
        assert stream.duration * stream.time_base == 8
    stopped = RecordingContext(stop_after=1)
    with pytest.raises(RenderStopped, match="cancelled"):
        engine.render(request, stopped, tmp_path / "b.mp4")
    assert stopped.steps == [(1, 3)]


def test_models_list_shows_the_upscaler_and_whether_its_weights_are_here(tmp_path):
    from framecast.engine.stages.upscale import build_tiny_upscaler

    def row(**options: str) -> str:
        lines = commands.models_list(EngineOptions(**options)).splitlines()
        return next(line for line in lines if line.startswith("kandinsky6-vsr "))

    assert "kandinskylab/Kandinsky-6.0-VSR-distilled2steps-5s-Diffusers" in row()
    assert "missing" in row(upscaler_model="framecast-test/no-such-vsr")
    build_tiny_upscaler().save_pretrained(tmp_path / "vsr")
    assert "local folder" in row(upscaler_model=str(tmp_path / "vsr"))
    (tmp_path / "vsr" / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    (tmp_path / "vsr" / "vae" / "config.json").unlink()
    assert "incomplete" in row(upscaler_model=str(tmp_path / "vsr"))
    assert "built in" in row(upscaler_model="tiny")


def test_pulling_the_upscaler_while_offline_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="^Could not download kandinskylab/Kandinsky-6.0-VSR-"):
        commands.models_pull(EngineOptions(), "kandinsky6-vsr")
