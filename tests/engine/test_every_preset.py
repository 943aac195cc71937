"""Every preset, plan -> render -> MP4, through a live server, on its tiny twin: the preset's own plan and code path
(fps, frame rule, steps, guidance, variant, audio) on random weights of its family's tiny model of the same
architecture (``FRAMECAST_MODEL=tiny:<preset>``)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import torch

from framecast.engine.engine import describe
from framecast.engine.families import get_family
from framecast.engine.planning import make_plan
from framecast.engine.presets import VARIANTS, all_presets, get_preset
from framecast.schema import TextToVideoInput
from tests.live_server import LiveServer, probe_mp4

ENDPOINT = "fal-ai/pixverse/v5.5/text-to-video"
PRESETS = sorted(p.name for p in all_presets() if not p.tiny)


def run_queued(live: LiveServer, body: dict, timeout: float = 240) -> tuple[dict, list[str]]:
    """Submit through the queue, poll its status with logs until it completes; the output and the log lines."""
    submitted = httpx.post(f"{live.url}/queue/{ENDPOINT}", json=body, timeout=30)
    assert submitted.status_code == 200, submitted.text
    status_url, response_url = submitted.json()["status_url"], submitted.json()["response_url"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(status_url, params={"logs": 1}, timeout=30).json()
        if status["status"] == "COMPLETED":
            result = httpx.get(response_url, timeout=30)
            assert result.status_code == 200, result.text
            return result.json(), [line["message"] for line in status.get("logs") or []]
        time.sleep(0.2)
    raise TimeoutError(f"not completed in {timeout}s:\n{live.output()[-3000:]}")


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_renders_the_exact_mp4_of_its_plan_through_a_live_server(name: str, tmp_path: Path):
    twin = get_preset(f"tiny:{name}")
    body = {
        "prompt": "a red fox trots through fresh snow, low tracking shot",
        "resolution": "360p",
        "aspect_ratio": "9:16",
        "duration": "5",
        "seed": 7,
        "generate_audio_switch": twin.joint_audio,
    }
    plan = make_plan(TextToVideoInput.model_validate(body), twin)
    with LiveServer(tmp_path / "data", env={"FRAMECAST_MODEL": f"tiny:{name}"}) as live:
        live.wait_ready(timeout=120)
        output, logs = run_queued(live, body)
        video = probe_mp4(output["video"]["url"], tmp_path / "out.mp4")

    assert (video["width"], video["height"], video["codec"]) == (360, 640, "h264")
    assert video["frames"] == 5 * twin.fps and video["fps"] == twin.fps
    assert video["audio"] == twin.joint_audio
    assert output["seed"] == 7
    # The plan the worker ran is the preset's (its own steps, sizes, frames), step by step.
    assert describe(plan) in logs
    # Every denoising step the family runs (a two-stage refine, every chunk of a chunked model), step by step.
    family = get_family(twin.family)(twin, VARIANTS.get(twin.variant))
    family.load(None, torch.float32)  # some count from their pipeline (a pyramid's stages)
    total = family.denoising_steps(plan) * plan.segments
    assert [line for line in logs if line.startswith("step ")] == [
        f"step {i}/{total}" for i in range(1, total + 1)
    ]
