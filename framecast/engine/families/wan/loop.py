"""The Wan family's denoising loop for diffusers' ``WanPipeline``: same components, fewer, larger forwards.

It reuses the pipeline's text encoder, scheduler, latents and VAE, and changes only how the transformer is
called:

- classifier-free guidance as ONE forward of batch 2 (conditional and unconditional rows) instead of two
  forwards of batch 1;
- the default negative prompt's text embeddings computed once per process (``NegativePromptCache``);
- Wan2.2 TI2V (``expand_timesteps``): in text-to-video every token has the same timestep, so the transformer
  may get one timestep per row instead of one per token (``uniform_timesteps``); that skips a per-token time
  projection and the fp32 (batch, tokens, 6, dim) modulation tensors in every block, with the same arithmetic
  per token;
- the A14B two-expert switch (``transformer_2`` below ``boundary_ratio``) exactly as the pipeline does it;
- clips longer than the model's longest (``windows``): all of the clip's latents are denoised together, each
  step predicting overlapping windows of the longest clip and blending their velocities where they overlap
  (linear cross-fades that sum to one), so the whole clip moves for real and neighbouring windows agree;
- any scheduler the pipeline has, DMD's stochastic one (dmd.py) included: its re-noising draws from the
  render's seeded generator, after the initial noise.

``decode`` turns the final latents into frames exactly as the pipeline does; the engine and the benchmarks both
decode through it.

Like ``WanPipeline.__call__`` (``@torch.no_grad()``), every entry point runs without autograd: a transformer
with any parameter that requires grad (diffusers' fused QKV projections are new ``nn.Parameter``s that do)
would otherwise record the graph and keep every block's activations for a backward pass that never comes
(the bench's framecast arm OOM'd at 135 GiB that way on an H200).

With the same seed and steps it computes what ``WanPipeline.__call__`` computes (tests hold it to a relative
error under 1e-4 in fp32); in bf16 the batched forward differs from two batch-1 forwards only by rounding.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from framecast.engine.parallel.group import CfgSplit

__all__ = [
    "LoopOptions",
    "NegativePromptCache",
    "StepCallback",
    "decode",
    "denoise",
    "encode_prompts",
    "window_weights",
]

# Called after every step with (step_index, total_steps, latents); raise from it to stop the render.
StepCallback = Callable[[int, int, torch.Tensor], None]


@dataclass(frozen=True)
class LoopOptions:
    """Which exact-result levers the loop uses; all on by default, each can be switched off to measure it."""

    batched_cfg: bool = True
    uniform_timesteps: bool = True


class NegativePromptCache:
    """Text embeddings of negative prompts, encoded once per (text, sequence length, device, dtype).

    A service renders most requests with the preset's default negative prompt, so its umT5 forward is paid
    once.
    """

    def __init__(self, max_entries: int = 8) -> None:
        self._entries: dict[tuple, torch.Tensor] = {}
        self._max_entries = max_entries

    @torch.no_grad()
    def get(self, pipe, text: str, max_sequence_length: int, device: torch.device) -> torch.Tensor:
        key = (text, max_sequence_length, str(device), pipe.text_encoder.dtype)
        if key not in self._entries:
            if len(self._entries) >= self._max_entries:
                self._entries.pop(next(iter(self._entries)))
            embeds, _ = pipe.encode_prompt(
                text,
                do_classifier_free_guidance=False,
                max_sequence_length=max_sequence_length,
                device=device,
            )
            self._entries[key] = embeds
        return self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


@torch.no_grad()
def encode_prompts(
    pipe,
    prompt: str,
    negative_prompt: str,
    *,
    guidance: bool,
    device: torch.device,
    max_sequence_length: int = 512,
    negative_cache: NegativePromptCache | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The prompt's embeddings and, with guidance, the negative prompt's (from the cache when one is
    given)."""
    positive, _ = pipe.encode_prompt(
        prompt, do_classifier_free_guidance=False, max_sequence_length=max_sequence_length, device=device
    )
    if not guidance:
        return positive, None
    if negative_cache is not None:
        return positive, negative_cache.get(pipe, negative_prompt, max_sequence_length, device)
    negative, _ = pipe.encode_prompt(
        negative_prompt,
        do_classifier_free_guidance=False,
        max_sequence_length=max_sequence_length,
        device=device,
    )
    return positive, negative


def _check_size(pipe, height: int, width: int, num_frames: int) -> None:
    patch = (
        pipe.transformer.config.patch_size
        if pipe.transformer is not None
        else pipe.transformer_2.config.patch_size
    )
    h_multiple = pipe.vae_scale_factor_spatial * patch[1]
    w_multiple = pipe.vae_scale_factor_spatial * patch[2]
    if height % h_multiple or width % w_multiple:
        raise ValueError(f"{width}x{height} is not a multiple of {w_multiple}x{h_multiple} for this model")
    if num_frames % pipe.vae_scale_factor_temporal != 1:
        raise ValueError(f"num_frames={num_frames} is not {pipe.vae_scale_factor_temporal}k+1")


def _timestep(pipe, t: torch.Tensor, latents: torch.Tensor, rows: int, options: LoopOptions) -> torch.Tensor:
    if not pipe.config.expand_timesteps or options.uniform_timesteps:
        return t.expand(rows)
    # One timestep per token, as the pipeline builds it for TI2V (all equal in text-to-video).
    frames, height, width = latents.shape[2:]
    patch = pipe.transformer.config.patch_size
    tokens = (frames // patch[0]) * (height // patch[1]) * (width // patch[2])
    per_token = torch.ones(tokens, dtype=torch.float32, device=latents.device) * t
    return per_token.unsqueeze(0).expand(rows, -1)


def _predict(
    model,
    latents: torch.Tensor,
    t: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor | None,
    guidance_scale: float,
    context: dict,
    pipe,
    options: LoopOptions,
    name: str = "",
    cfg_split: CfgSplit | None = None,
) -> torch.Tensor:
    """The guided velocity for one step, in the transformer's dtype like the pipeline's; ``name`` keeps each
    window's cache state apart. With ``cfg_split`` this rank runs one guidance pass and gathers the other."""
    x = latents.to(positive.dtype)
    if negative is None:
        with model.cache_context(f"cond{name}", **context):
            return model(x, _timestep(pipe, t, latents, 1, options), positive, return_dict=False)[0]
    if cfg_split is not None:
        kind, embeds = ("cond", positive) if cfg_split.index == 0 else ("uncond", negative)
        with model.cache_context(f"{kind}{name}", **context):
            mine = model(x, _timestep(pipe, t, latents, 1, options), embeds, return_dict=False)[0]
        cond, uncond = cfg_split.gather(mine)
        return uncond + guidance_scale * (cond - uncond)
    if options.batched_cfg:
        with model.cache_context(f"cond_uncond{name}", **context):
            both = model(
                torch.cat([x, x]),
                _timestep(pipe, t, latents, 2, options),
                torch.cat([positive, negative]),
                return_dict=False,
            )[0]
        cond, uncond = both.chunk(2)
    else:
        timestep = _timestep(pipe, t, latents, 1, options)
        with model.cache_context(f"cond{name}", **context):
            cond = model(x, timestep, positive, return_dict=False)[0]
        with model.cache_context(f"uncond{name}", **context):
            uncond = model(x, timestep, negative, return_dict=False)[0]
    return uncond + guidance_scale * (cond - uncond)


def window_weights(starts: Sequence[int], window: int) -> list[torch.Tensor]:
    """Per window, the weight of each of its latent frames: 1 inside, a linear cross-fade over the frames it
    shares with each neighbour (the two fades sum to one there)."""
    weights = []
    for k, start in enumerate(starts):
        weight = torch.ones(window)
        if k > 0:
            shared = starts[k - 1] + window - start
            weight[:shared] = torch.arange(1, shared + 1) / (shared + 1)
        if k + 1 < len(starts):
            shared = start + window - starts[k + 1]
            weight[window - shared :] = torch.minimum(
                weight[window - shared :], torch.arange(shared, 0, -1) / (shared + 1)
            )
        weights.append(weight)
    return weights


def _blended(
    predict: Callable[[torch.Tensor, str], torch.Tensor],
    latents: torch.Tensor,
    starts: Sequence[int],
    weights: Sequence[torch.Tensor],
) -> torch.Tensor:
    """One step's velocity for the whole clip: each window predicted on its slice of the latents, the
    predictions weighted and summed where windows overlap, then normalised by the summed weights."""
    window = len(weights[0])
    total = torch.zeros_like(latents, dtype=torch.float32)
    norm = torch.zeros(latents.shape[2], dtype=torch.float32, device=latents.device)
    for k, (start, weight) in enumerate(zip(starts, weights, strict=True)):
        part = predict(latents[:, :, start : start + window], f"_w{k}").float()
        weight = weight.to(latents.device)
        total[:, :, start : start + window] += part * weight.view(1, 1, -1, 1, 1)
        norm[start : start + window] += weight
    return total / norm.view(1, 1, -1, 1, 1)


@torch.no_grad()
def denoise(
    pipe,
    *,
    prompt_embeds: torch.Tensor,
    negative_prompt_embeds: torch.Tensor | None,
    height: int,
    width: int,
    num_frames: int,
    num_inference_steps: int,
    guidance_scale: float,
    guidance_scale_2: float | None = None,
    generator: torch.Generator | None = None,
    latents: torch.Tensor | None = None,
    options: LoopOptions = LoopOptions(),
    on_step: StepCallback | None = None,
    max_steps: int | None = None,
    windows: Sequence[int] = (),
    window_frames: int = 0,
    cfg_split: CfgSplit | None = None,
) -> torch.Tensor:
    """Run the denoising loop and return the final latents (float32, not yet denormalised or decoded).

    Guidance is on when ``negative_prompt_embeds`` is given (the caller decides, as ``guidance_scale > 1``).
    ``max_steps`` stops after that many steps of the ``num_inference_steps`` schedule (benchmarks time a few).
    ``windows`` (first frames, on the frame rule) and ``window_frames`` denoise a clip longer than the model's
    longest as blended overlapping windows (module docstring). ``cfg_split``: CFG-parallel, this rank's pass
    (engine/parallel/group.py).
    """
    # 1. Check inputs
    _check_size(pipe, height, width, num_frames)
    if guidance_scale_2 is not None and pipe.config.boundary_ratio is None:
        raise ValueError("guidance_scale_2 needs a pipeline with boundary_ratio (two experts)")
    device = prompt_embeds.device
    first = pipe.transformer if pipe.transformer is not None else pipe.transformer_2
    dtype = first.dtype

    # 2. Embeddings in the transformer's dtype
    positive = prompt_embeds.to(dtype)
    negative = None if negative_prompt_embeds is None else negative_prompt_embeds.to(dtype)

    # 3. Timesteps
    pipe.scheduler.set_timesteps(num_inference_steps, device=device)
    pipe.scheduler.set_begin_index(0)
    timesteps = pipe.scheduler.timesteps

    # 4. Initial noise, drawn exactly as the pipeline draws it
    latents = pipe.prepare_latents(
        positive.shape[0],
        first.config.in_channels,
        height,
        width,
        num_frames,
        torch.float32,
        device,
        generator,
        latents,
    )

    # 5. Windows, in latent frames (the VAE keeps one latent frame per vae_scale_factor_temporal frames)
    starts, weights = _latent_windows(pipe, latents, windows, window_frames)

    # 6. Expert switch (Wan2.2 A14B): the first expert above the boundary timestep, the second below it
    boundary = None
    if pipe.config.boundary_ratio is not None:
        boundary = pipe.config.boundary_ratio * pipe.scheduler.config.num_train_timesteps
    low_noise_scale = guidance_scale if guidance_scale_2 is None else guidance_scale_2

    # 7. Denoising loop; a stochastic sampler (dmd.py) draws its fresh noise from the same seeded generator
    step_kwargs = (
        {"generator": generator} if "generator" in inspect.signature(pipe.scheduler.step).parameters else {}
    )
    total = len(timesteps)
    for i, t in enumerate(timesteps):
        if max_steps is not None and i >= max_steps:
            break
        high_noise = boundary is None or t >= boundary
        model = pipe.transformer if high_noise else pipe.transformer_2
        scale = guidance_scale if high_noise else low_noise_scale
        context = {"step_index": i, "sigma": float(pipe.scheduler.sigmas[i]), "num_inference_steps": total}

        def predict(x: torch.Tensor, name: str = "") -> torch.Tensor:
            return _predict(model, x, t, positive, negative, scale, context, pipe, options, name, cfg_split)  # noqa: B023

        velocity = _blended(predict, latents, starts, weights) if starts else predict(latents)
        latents = pipe.scheduler.step(velocity, t, latents, return_dict=False, **step_kwargs)[0]
        if on_step is not None:
            on_step(i, total, latents)
    return latents


def _latent_windows(
    pipe, latents: torch.Tensor, windows: Sequence[int], window_frames: int
) -> tuple[list[int], list[torch.Tensor]]:
    if len(windows) < 2:
        return [], []
    step = pipe.vae_scale_factor_temporal
    window = (window_frames - 1) // step + 1
    starts = [start // step for start in windows]
    if any(start % step for start in windows) or starts[-1] + window != latents.shape[2]:
        raise ValueError(
            f"windows {list(windows)} of {window_frames} frames do not tile {latents.shape[2]} latents"
        )
    return starts, window_weights(starts, window)


@torch.no_grad()
def decode(pipe, latents: torch.Tensor, output_type: str = "pt") -> torch.Tensor:
    """The final latents as (batch, frames, 3, height, width) in [0, 1] (``output_type="pt"``), decoded as
    ``WanPipeline`` decodes them, in the VAE's own dtype; ``"pt-raw"`` is the VAE's output before
    post-processing (what the benchmarks time)."""
    from diffusers.utils.torch_utils import get_module_execution_device

    vae = pipe.vae
    # The VAE's execution device, not its weights' one: with offload the weights wait on the CPU.
    latents = latents.to(get_module_execution_device(vae), vae.dtype)
    if vae.dtype == torch.bfloat16 and latents.is_cuda:  # the bf16 VAE lever stores its weights channels-last
        latents = latents.contiguous(memory_format=torch.channels_last_3d)
    mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(latents)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(latents)
    video = vae.decode(latents / inv_std + mean, return_dict=False)[0]
    if output_type == "pt-raw":
        return video
    frames = pipe.video_processor.postprocess_video(video, output_type=output_type)
    pipe.maybe_free_model_hooks()  # model offload: back to the CPU, as at the end of a pipeline call
    return frames
