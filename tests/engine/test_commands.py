from __future__ import annotations

import dataclasses

import av
import pytest

from framecast.config import Settings
from framecast.engine import EngineOptions, commands, create_engine
from framecast.engine.instant import InstantEngine
from framecast.engine.presets import all_presets
from framecast.errors import ModelUnavailableError, RenderStopped
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext


def test_models_list_shows_every_preset_with_size_licence_and_weights():
    table = commands.models_list(EngineOptions())
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["NAME", "SIZE", "WEIGHTS", "LICENCE"]
    ltx = next(line for line in lines if line.startswith("ltx-2 "))
    assert "94 GB" in ltx and "Community Licence" in ltx
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


def test_plan_shows_what_a_request_renders_without_loading_the_model():
    engine = create_engine(Settings(model="wan2.1-t2v-1.3b", device="cpu"))
    request = TextToVideoInput(prompt="a fox", duration="10", seed=5)
    plan = commands.plan(engine, request)
    assert engine.pipe is None  # type: ignore[attr-defined]  # planned, never loaded: no weights needed
    assert plan["model"] == "wan2.1-t2v-1.3b" and plan["seed"] == 5
    assert plan["output"] == {"width": 1280, "height": 720, "frames": 160, "fps": 16}
    generation = plan["generation"]
    assert (
        generation["long_clip"] == "window"
        and generation["frames"] == 161
        and generation["windows"] == [0, 40, 80]
    )
    assert (plan["steps"], plan["guidance_scale"], plan["flow_shift"]) == (50, 6.0, 8.0)
    assert plan["prompt"] == "a fox" and "walking backwards" in plan["negative_prompt"]
    assert len(plan["shots"]) == 1


def test_the_plan_command_prints_the_plan_as_json_for_the_same_flags_as_generate(tmp_path):
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "FRAMECAST_DATA_DIR": str(tmp_path), "FRAMECAST_DEVICE": "cpu"}
    args = [
        sys.executable,
        "-m",
        "framecast",
        "plan",
        "a fox",
        "--duration",
        "8",
        "--model",
        "wan2.2-ti2v-5b",
    ]
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True, timeout=120)
    plan = json.loads(out.stdout)
    assert plan["generation"]["long_clip"] == "chain" and plan["generation"]["segments"] == 2
    assert plan["generation"]["joins"] == [{"frame": 121, "how": "continues from the frame before"}]


def test_a_1080p_plan_says_how_it_reaches_1080p_and_why_when_bicubic(capsys):
    request = TextToVideoInput(prompt="a fox", resolution="1080p", seed=5)
    # The 1.3B generates 848x480; without the upscaler's weights here, a bicubic upscale, and the line says why.
    plan = commands.plan(create_engine(Settings(model="wan2.1-t2v-1.3b", device="cpu")), request)
    assert plan["output"]["width"] == 1920 and plan["generation"]["width"] == 848
    assert (plan["generation"]["upscaler"], plan["generation"]["upscale"]) == ("bicubic", 1.0)
    assert "framecast models pull kandinsky6-vsr" in capsys.readouterr().err
    # LTX upscales in its own two stages: no upscaler stage is offered for it, and the line says so.
    plan = commands.plan(create_engine(Settings(model="ltx-2", device="cpu")), request)
    assert (plan["generation"]["width"], plan["generation"]["upscaler"]) == (1664, "bicubic")
    assert "upscales in its own pipeline" in capsys.readouterr().err


def test_a_1080p_plan_with_the_upscaler_runs_it_at_the_smallest_scale_that_covers():
    from framecast.engine.planning import make_plan, summary
    from framecast.engine.presets import get_preset
    from framecast.engine.stages.upscale import upscaler_offer

    spec, _ = upscaler_offer("framecast-test/no-such-vsr")  # the published geometry, read without weights
    spec = dataclasses.replace(spec, present=True)
    preset = get_preset("wan2.1-t2v-1.3b")
    plan = summary(
        make_plan(TextToVideoInput(prompt="a fox", resolution="1080p"), preset, upscaler=spec), preset
    )
    assert plan["generation"]["upscaler"] == "kandinsky6-vsr" and plan["generation"]["upscale"] == 2.25


REAL_PRESETS = sorted(p.name for p in all_presets() if not p.tiny)


@pytest.mark.parametrize("name", REAL_PRESETS)
def test_framecast_plan_on_every_preset_generates_8_and_10_s_in_full_and_says_how_it_reaches_1080p(
    name, capsys
):
    from framecast.engine.families import get_family

    engine = create_engine(Settings(model=name, device="cpu"))
    for duration in ("8", "10"):
        plan = commands.plan(engine, TextToVideoInput(prompt="a fox", duration=duration, seed=1))
        assert plan["generation"]["long_clip"] != "stretch", (name, duration)
        assert plan["output"]["frames"] == int(duration) * plan["output"]["fps"]
    capsys.readouterr()
    plan = commands.plan(engine, TextToVideoInput(prompt="a fox", resolution="1080p", seed=1))
    log = capsys.readouterr().err
    # Without the upscaler's weights on this machine: bicubic, and the log says why and how to get the learned one
    # (or, for a family with its own learned upsampler, that it upscales in its own pipeline).
    assert plan["generation"]["upscaler"] == "bicubic"
    if get_family(engine.preset.family).upscales_itself:
        assert "upscales in its own pipeline" in log
    else:
        assert "framecast models pull kandinsky6-vsr" in log
