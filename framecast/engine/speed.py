"""The engine's speed levers, applied once at load on CUDA: the probed attention backend (exact), FP8 matmuls
(``FRAMECAST_FP8``, not exact) and regional compile with its shapes warmed in buckets (``FRAMECAST_COMPILE``,
exact; buckets.py)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from framecast.engine import accel, buckets, fp8
from framecast.engine.plan import RenderPlan, make_plan
from framecast.errors import ConfigError
from framecast.schema import TextToVideoInput

if TYPE_CHECKING:
    from framecast.engine.pipeline import DiffusersEngine

logger = logging.getLogger(__name__)


def accelerate(engine: DiffusersEngine) -> None:
    """Speed levers on CUDA: the fastest attention backend that passes the probe (exact); with
    ``FRAMECAST_FP8=1`` FP8 matmuls (not exact); with ``FRAMECAST_COMPILE=1`` regionally compiled transformer
    blocks with their shapes warmed (exact; buckets.py)."""
    experts = [
        m for m in (engine.pipe.transformer, getattr(engine.pipe, "transformer_2", None)) if m is not None
    ]
    config = experts[0].config
    tokens = 8192  # long enough that the timing ranks the kernels as a full-size clip would
    accel.use_fastest_attention(
        experts, time_shape=(2, tokens, config.num_attention_heads, config.attention_head_dim)
    )
    if engine.settings.fp8:
        quantize(engine, experts)
    if engine.settings.compile:
        compile_and_warm(engine, experts)


def compile_and_warm(engine: DiffusersEngine, experts: list[Any], backend: str = "inductor") -> dict:
    """Compile the transformer blocks and warm the shapes ``FRAMECAST_COMPILE_WARMUP`` names (buckets.py)
    now, at start-up; a bucket that was not warmed compiles on its first request. Returns seconds per
    shape."""
    shapes = buckets.warmup_shapes(engine.preset, engine.settings.compile_warmup)  # a bad setting fails first
    # Inductor's compiled kernels persist under the data folder (not /tmp), so a restarted worker finds
    # them: its warm-up takes seconds, not the cold compile's minutes.
    cache = os.environ.setdefault(
        "TORCHINDUCTOR_CACHE_DIR", str(Path(engine.settings.data_dir) / "compile-cache")
    )
    logger.info("compile cache: %s", cache)
    for expert in experts:
        accel.compile_transformer(expert, backend=backend)
    # One graph per shape, batch (CFG or not) and call (text-to-video, image-to-video continuation): past
    # dynamo's default limit of 8 it would silently run the blocks uncompiled.
    every_shape = 2 * len(buckets.warmup_shapes(engine.preset, "all"))
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, every_shape + 8)
    engine.compiled = True
    seconds = accel.warm_up(lambda w, h, f: _warm_shape(engine, experts, w, h, f), shapes)
    logger.info("compiled %s's transformer blocks; warm-up (s per shape): %s", engine.name, seconds)
    return seconds


def _warm_shape(engine: DiffusersEngine, experts: list[Any], width: int, height: int, frames: int) -> None:
    """One denoising step at this shape through each expert, and one continuation step for "chain"."""
    plan = make_plan(TextToVideoInput.model_validate({"prompt": "warm-up"}), engine.preset)
    sized = dataclasses.replace(plan, gen_width=width, gen_height=height, gen_frames=frames)
    first = engine.pipe.transformer
    with torch.inference_mode():
        for expert in experts:  # step 1 runs pipe.transformer: make each expert that, in turn
            engine.pipe.transformer = expert
            try:
                engine.wan_latents(sized, None, max_steps=1)
            finally:
                engine.pipe.transformer = first
        if engine.preset.extend == "chain" and frames == buckets.frame_buckets(engine.preset)[-1]:
            engine.continuation()(**_continuation_warm_kwargs(engine, sized))


def _continuation_warm_kwargs(engine: DiffusersEngine, plan: RenderPlan) -> dict[str, Any]:
    """Arguments for one step of the image-to-video continuation at ``plan``'s size (then it stops)."""
    from PIL import Image

    def stop_after_one(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        pipe._interrupt = True
        return tensors

    kwargs = engine.call_kwargs(plan, _WarmUpContext())
    image = Image.new("RGB", (plan.gen_width, plan.gen_height))
    return {**kwargs, "image": image, "callback_on_step_end": stop_after_one, "output_type": "latent"}


def quantize(engine: DiffusersEngine, experts: list[Any]) -> None:
    """FP8 matmuls in the transformer blocks (``FRAMECAST_FP8=1``; opt-in, it changes the video a little)."""
    if engine.settings.style_loras:
        raise ConfigError(
            "FRAMECAST_FP8=1 cannot be combined with FRAMECAST_STYLE_LORAS: style LoRAs are applied to the "
            "bf16 linear layers that FP8 replaces"
        )
    if not fp8.fp8_matmul_supported(torch.device(engine.device)):
        logger.warning("FRAMECAST_FP8=1 ignored: FP8 matmuls need a CUDA GPU of compute capability 8.9+")
        return
    for expert in experts:
        fp8.quantize_linears(expert)


class _WarmUpContext:
    """The render context of a warm-up step: it logs nothing and never stops."""

    def log(self, message: str, level: str = "INFO") -> None:
        pass

    def progress(self, step: int, total: int) -> None:
        pass

    def should_stop(self) -> str | None:
        return None
