"""The upscaler stage: the generated clip at a learned x2, x2.25 or x4, for outputs above a preset's native size.

Model: Kandinsky 6.0 VSR distilled to two steps (``kandinskylab/Kandinsky-6.0-VSR-distilled2steps-5s-Diffusers``,
diffusers ``Kandinsky6SRPipeline``, MIT licence, 17.5 GB): a 1.4B super-resolution transformer that refines
overlapping tiles of a clip in the latent space of its causal video VAE, after a bank of x2 / x4 latent upscalers.
It takes frames from any model. It is called as its authors' docs call it,
``pipe(video=frames, resolution_scale=s, num_inference_steps=2)``; the pipeline's other defaults
(``lq_noise_scale=0.7``, ``min_overlap=0.2``) are the checkpoint's own ``sr_params``.

- Length: "5s" in the name is the clip the model is trained and published for, 121 frames (5 s at 24 fps).
  A longer clip is upscaled in the fewest windows of at most ``MAX_FRAMES`` frames that cover it, of one length,
  neighbours sharing at least ``OVERLAP`` frames, cross-faded linearly where they overlap.
- Frames: the pipeline takes ``1 + 4k`` frames; a clip is padded with its last frame, and cut back afterwards.
  A 16 fps clip goes in as it is: its authors resample to the 24 fps they trained at, which would blend frames.
- Memory: its attention always runs PyTorch's flex attention; uncompiled, that materialises the whole
  attention matrix of a tile, which does not fit at video sizes, so on CUDA the transformer's blocks are compiled
  (as its authors do). The pipeline encodes a whole window and blends into a full-size canvas on the device.
- Device: kept on the CPU between renders, on the GPU only while it runs (like the audio stage).
- Cancel: before every transformer call, i.e. every denoising step of every tile (a forward pre-hook: the
  pipeline has no step callback), and between windows. The VAE encode of a window is not interruptible.
- Determinism: window ``k``'s noise comes from a CPU generator seeded with ``seed + k``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from framecast.engine import weights
from framecast.engine.planning.frames import on_rule
from framecast.engine.planning.upscale import UpscalerSpec
from framecast.engine.stages import TINY_UPSCALER, UPSCALER_NAME
from framecast.errors import ModelUnavailableError, RenderStopped

__all__ = [
    "Upscaler",
    "build_tiny_upscaler",
    "frame_windows",
    "load_upscaler",
    "upscaler_offer",
]

logger = logging.getLogger(__name__)

TINY_NAME = "tiny-kandinsky6-vsr"
SCALES = (2.0, 2.25, 4.0)  # what Kandinsky6SRPipeline.check_inputs accepts
STEPS = 2  # the distilled checkpoint's two model evaluations per tile (its model card)
MAX_FRAMES = 121
OVERLAP = 8


class Upscaler:
    """A ``Kandinsky6SRPipeline`` and the name plans give it; ``upscale`` is the stage."""

    def __init__(
        self, pipe: Any, name: str, device: str = "cpu", steps: int = STEPS, max_frames: int = MAX_FRAMES
    ) -> None:
        self.pipe = pipe
        self.name = name
        self.device = device
        self.steps = steps
        self.max_frames = max_frames

    @property
    def spec(self) -> UpscalerSpec:
        return spec_of(self.pipe, self.name)

    def upscale(
        self,
        video: torch.Tensor,
        scale: float,
        seed: int,
        *,
        log: Callable[[str], Any] = logger.info,
        should_stop: Callable[[], str | None] = lambda: None,
    ) -> torch.Tensor:
        """``video`` (frames, 3, h, w) in [0, 1] at ``x scale``: the same frames, at the pipeline's output size
        (``planning.upscale.upscaled_size``), in [0, 1], float32 on the CPU."""
        started = time.monotonic()
        # 1. 1 + 4k frames, in windows the model is trained for
        count = video.shape[0]
        step = self.pipe.vae_scale_factor_temporal
        padded = torch.cat([video, video[-1:].expand(on_rule(count, step) - count, -1, -1, -1)])
        windows = frame_windows(padded.shape[0], self.max_frames, OVERLAP, step)
        calls = [0]

        def before_step(module: Any, args: Any) -> None:
            reason = should_stop()
            if reason:
                raise RenderStopped(reason)
            calls[0] += 1

        # 2. Each window through the pipeline on the GPU (if any), blended into the clip on the CPU
        hook = self.pipe.transformer.register_forward_pre_hook(before_step)
        try:
            self.pipe.to(self.device)
            canvas = weight = None
            for index, (start, end) in enumerate(windows):
                part = self._window(padded[start:end].clamp(0, 1), scale, seed + index)
                fade = crossfade(windows, index).view(-1, 1, 1, 1)
                if canvas is None or weight is None:
                    canvas = torch.zeros((padded.shape[0], *part.shape[1:]))
                    weight = torch.zeros((padded.shape[0], 1, 1, 1))
                canvas[start:end] += part * fade
                weight[start:end] += fade
        finally:
            hook.remove()
            if self.device != "cpu":
                self.pipe.to("cpu")
                torch.cuda.empty_cache()
        assert canvas is not None and weight is not None
        log(
            f"upscaler {self.name}: x{scale:g} to {canvas.shape[-1]}x{canvas.shape[-2]}, {count} frames in "
            f"{len(windows)} window(s), {calls[0]} transformer steps, {time.monotonic() - started:.1f} s"
        )
        return (canvas / weight)[:count]

    def _window(self, frames: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
        generator = torch.Generator("cpu").manual_seed(seed % 2**32)
        with torch.inference_mode():
            out = self.pipe(
                video=frames,
                resolution_scale=scale,
                num_inference_steps=self.steps,
                generator=generator,
                output_type="pt",
            ).frames[0]
        return out.float().cpu()


def frame_windows(frames: int, longest: int, overlap: int, step: int) -> list[tuple[int, int]]:
    """``(start, end)`` windows covering ``frames`` (itself ``1 + step * k``): one when it fits in ``longest``,
    else the fewest that do, all of one length on the frame rule (as short as they can be: the pipeline's cost
    grows with every frame it is given), starts on ``step``, neighbours sharing at least ``overlap`` frames."""
    longest = (longest - 1) // step * step + 1
    if frames <= longest:
        return [(0, frames)]
    count = math.ceil((frames - overlap) / (longest - overlap))
    while True:
        length = on_rule((frames + (count - 1) * overlap) / count, step)
        # Starts on the step can sit one step further apart than exact ones: lengthen, or add a window.
        while (
            length <= longest and math.ceil((frames - length) / step / (count - 1)) * step > length - overlap
        ):
            length += step
        if length <= longest:
            break
        count += 1
    span = (frames - length) // step
    starts = [round(index * span / (count - 1)) * step for index in range(count)]
    return [(start, start + length) for start in starts]


def crossfade(windows: list[tuple[int, int]], index: int) -> torch.Tensor:
    """Window ``index``'s blend weights: 1, ramping linearly in over its overlap with the window before and out
    over its overlap with the window after (the weights of two neighbours sum to 1 there)."""
    start, end = windows[index]
    fade = torch.ones(end - start)
    if index > 0:
        shared = windows[index - 1][1] - start
        fade[:shared] = torch.arange(1, shared + 1) / (shared + 1)
    if index + 1 < len(windows):
        shared = end - windows[index + 1][0]
        fade[-shared:] = torch.minimum(fade[-shared:], torch.arange(shared, 0, -1) / (shared + 1))
    return fade


def spec_of(pipe: Any, name: str, present: bool = True) -> UpscalerSpec:
    """What planning needs of a ``Kandinsky6SRPipeline`` (its scales, VAE factor and trained tiles)."""
    return UpscalerSpec(
        name=name,
        scales=SCALES,
        snap=int(pipe.vae_scale_factor_spatial),
        tile_sizes=tuple((int(h), int(w)) for h, w in pipe.transformer_tile_sizes),
        present=present,
    )


def upscaler_offer(source: str) -> tuple[UpscalerSpec, str]:
    """The spec of the upscaler ``source`` names (``FRAMECAST_UPSCALER_MODEL``: a repo id, a folder or
    ``tiny``), read from its configs without loading its weights, and why it is absent ("" when present)."""
    if source == TINY_UPSCALER:
        return spec_of(build_tiny_upscaler(), TINY_NAME), ""
    folder = _folder(source)
    if folder is None:
        why = f"the {UPSCALER_NAME} weights ({source}) are not on this machine"
        return _default_spec(present=False), why
    missing = weights.problems(folder)
    if missing:
        why = f"the {UPSCALER_NAME} weights in {folder} are incomplete (missing {', '.join(missing[:3])})"
        return _default_spec(present=False), why
    return spec_of(_config_pipeline(folder), UPSCALER_NAME), ""


def load_upscaler(source: str, device: str = "cpu") -> Upscaler:
    """The upscaler ``source`` names, on the CPU; ``ModelUnavailableError`` when its weights are not here."""
    if source == TINY_UPSCALER:
        return Upscaler(build_tiny_upscaler(), TINY_NAME, device=device)
    from diffusers import Kandinsky6SRPipeline

    folder = _folder(source)
    if folder is None or weights.problems(folder):
        raise ModelUnavailableError(
            f"the upscaler model {source} is not on this machine: run `framecast models pull {UPSCALER_NAME}`"
        )
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pipe = Kandinsky6SRPipeline.from_pretrained(folder, dtype=dtype, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if device == "cuda":
        # Eager flex attention holds a tile's whole attention matrix; compiled, it runs the sparse kernel.
        pipe.transformer.compile_repeated_blocks(fullgraph=True)
    return Upscaler(pipe, UPSCALER_NAME, device=device)


def _folder(source: str) -> Path | None:
    if Path(source).is_dir():
        return Path(source)
    if "/" not in source or source.startswith((".", "/")):  # a folder path that does not exist
        return None
    return weights.cached_repo(source)


def _default_spec(present: bool) -> UpscalerSpec:
    # The published checkpoint's geometry (the diffusers class defaults its configs leave in place): planning
    # needs it only to say which scale would run, and the plan falls back to bicubic anyway.
    return UpscalerSpec(UPSCALER_NAME, SCALES, 16, ((512, 512), (512, 768), (768, 512)), present)


def _config_pipeline(folder: Path) -> Any:
    """The pipeline's transformer and VAE built from ``folder``'s configs on the meta device (no weights read),
    so that their config defaults are diffusers' own."""
    from types import SimpleNamespace

    from diffusers import Kandinsky6SRTransformer3DModel, Kandinsky6SRVAE

    with torch.device("meta"):
        vae = Kandinsky6SRVAE.from_config(Kandinsky6SRVAE.load_config(folder / "vae"))
        transformer = Kandinsky6SRTransformer3DModel.from_config(
            Kandinsky6SRTransformer3DModel.load_config(folder / "transformer")
        )
    return SimpleNamespace(
        vae_scale_factor_spatial=vae.spatial_compression_ratio,
        transformer_tile_sizes=transformer.config.tile_sizes,
    )


def build_tiny_upscaler() -> Any:
    """A random-weight ``Kandinsky6SRPipeline`` of the real classes, built offline (tests, CPU smoke runs): the
    distilled checkpoint's scheduler and output width (``n_grid`` predictions per latent channel), a five-level
    VAE (spatial factor 16, temporal 4, as the real one) one or two channels wide, trained tiles of 128 pixels."""
    from diffusers import (
        Kandinsky6SRLatentUpscalerBank,
        Kandinsky6SRPipeline,
        Kandinsky6SRTransformer3DModel,
        Kandinsky6SRVAE,
        PiflowScheduler,
    )

    scheduler: Any = PiflowScheduler(shift=3.5, n_grid=10)  # the distilled repo's scheduler config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        transformer: Any = Kandinsky6SRTransformer3DModel(
            in_visual_dim=4,
            out_visual_dim=4 * scheduler.config.n_grid,
            time_dim=16,
            model_dim=24,
            ff_dim=32,
            num_visual_blocks=2,
            axes_dims=(4, 4, 4),
            # NABLA attention needs each tile's latent grid divisible by 8: 128 / 16 = 8.
            tile_sizes=((128, 128), (128, 256), (256, 128)),
        )
        torch.manual_seed(1)
        vae: Any = Kandinsky6SRVAE(
            latent_channels=4,
            encoder_block_out_channels=(2, 2, 2, 2, 2),
            # One channel wide: decoding every tile at full size is most of a tiny render's time on a CPU.
            decoder_block_out_channels=(1, 1, 1, 1, 1),
            layers_per_block=1,
        )
        torch.manual_seed(2)
        latent_upscaler: Any = Kandinsky6SRLatentUpscalerBank(
            in_channels=4,
            stage_channels=(8, 8, 4),
            num_pre_blocks=1,
            num_mid_blocks=1,
            num_post_blocks=1,
            num_x2_adapter_blocks=1,
        )
    pipe: Any = Kandinsky6SRPipeline(
        transformer=transformer.eval(),
        vae=vae.eval(),
        scheduler=scheduler,
        latent_upscaler=latent_upscaler.eval(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe
