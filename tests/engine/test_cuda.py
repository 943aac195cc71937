"""The engine's CUDA paths (placement, offload modes) with the tiny models. Skipped without CUDA."""

from __future__ import annotations

import pytest
import torch

from framecast.config import Settings
from framecast.engine.pipeline import DiffusersEngine
from framecast.engine.plan import make_plan
from framecast.engine.presets import get_preset
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("name", ["tiny-wan", "tiny-ltx2"])
@pytest.mark.parametrize("offload", ["none", "model", "sequential", "group"])
def test_tiny_models_render_on_cuda_in_every_memory_mode(name, offload, tmp_path):
    engine = DiffusersEngine(get_preset(name), Settings(model=name, device="cuda", offload=offload))
    engine.load()
    request = TextToVideoInput(
        prompt="a fox", resolution="360p", seed=1, generate_audio_switch=name == "tiny-ltx2"
    )
    clip = engine.generate(make_plan(request, engine.preset), RecordingContext())
    assert torch.isfinite(clip.video).all()
    result = engine.render(request, RecordingContext(), tmp_path / "out.mp4")
    assert (result.width, result.height) == (640, 360)
