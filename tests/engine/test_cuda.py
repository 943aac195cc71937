"""The engine's CUDA paths (placement, offload modes) with the tiny models. Skipped without CUDA."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.schema import TextToVideoInput
from tests.engine.conftest import RecordingContext

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("name", ["tiny-wan", "tiny-ltx2"])
@pytest.mark.parametrize("offload", ["none", "model", "sequential", "group"])
def test_tiny_models_render_on_cuda_in_every_memory_mode(name, offload, tmp_path):
    engine = DiffusersEngine(get_preset(name), EngineOptions(model=name, device="cuda", offload=offload))
    engine.load()
    request = TextToVideoInput(
        prompt="a fox", resolution="360p", seed=1, generate_audio_switch=name == "tiny-ltx2"
    )
    clip = engine.generate(make_plan(request, engine.preset), RecordingContext())
    assert torch.isfinite(clip.video).all()
    result = engine.render(request, RecordingContext(), tmp_path / "out.mp4")
    assert (result.width, result.height) == (640, 360)


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9),
    reason="FP8 matmuls need compute capability 8.9+",
)
def test_fp8_linear_on_the_tensor_cores_computes_what_its_emulation_computes():
    from framecast.engine.speed import fp8

    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(256, 128).requires_grad_(False)
    x = torch.randn(3, 100, 256, generator=gen)
    emulated = fp8.Fp8Linear(linear)(x)  # CPU: the same e4m3 values, multiplied in fp32
    layer = fp8.Fp8Linear(linear.to("cuda", torch.bfloat16))
    fast = layer(x.to("cuda", torch.bfloat16))
    assert fast.dtype == torch.bfloat16 and fast.shape == (3, 100, 128)
    # bf16 activations round before the e4m3 step, and the kernel accumulates in fp32 with fast accumulation.
    assert float((fast.float().cpu() - emulated).norm() / emulated.norm()) < 1e-2


def test_fp8_denoising_on_cuda_stays_finite_and_near_bf16():
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 matmuls need compute capability 8.9+")
    from framecast.engine.families.wan import build
    from framecast.engine.families.wan import loop as wan_loop
    from framecast.engine.speed import fp8

    cuda = torch.device("cuda")
    pipe = build.build_pipeline(
        build.tiny_config("wan2.2-ti2v-5b"), device=cuda, dtype=torch.bfloat16, vae_dtype=torch.float32
    )
    positive, negative = wan_loop.encode_prompts(pipe, "a fox", "blurry", guidance=True, device=cuda)

    def latents() -> torch.Tensor:
        return wan_loop.denoise(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
            height=64,
            width=64,
            num_frames=9,
            num_inference_steps=4,
            guidance_scale=5.0,
            generator=torch.Generator().manual_seed(0),
        )

    reference = latents()
    assert fp8.quantize_linears(pipe.transformer) == 20
    quantized = latents()
    assert torch.isfinite(quantized).all()
    assert float((quantized - reference).norm() / reference.norm()) < 0.1


def test_a_bf16_vae_decodes_channels_last_on_cuda(tmp_path):
    from framecast.engine.families import save_tiny

    folder = save_tiny("tiny-wan", tmp_path / "saved")
    settings = EngineOptions(model="tiny-wan", device="cuda", offload="none", model_path=str(folder))
    engine = DiffusersEngine(get_preset("tiny-wan"), dataclasses.replace(settings, vae_dtype="bfloat16"))
    engine.load()
    conv = next(m for m in engine.pipe.vae.modules() if isinstance(m, torch.nn.Conv3d))
    assert engine.pipe.vae.dtype == torch.bfloat16
    assert conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    request = TextToVideoInput(prompt="a fox", resolution="360p", seed=1)
    clip = engine.generate(make_plan(request, engine.preset), RecordingContext())
    assert torch.isfinite(clip.video).all()
