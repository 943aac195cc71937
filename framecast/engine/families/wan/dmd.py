"""DMD sampling for step-distilled Wan checkpoints (FastWan): predict the clean video, then re-noise it.

A DMD-distilled model (Distribution Matching Distillation, as FastVideo trains FastWan2.2-TI2V-5B) is
sampled at a few fixed training timesteps, (1000, 757, 522) for FastWan. At timestep t, with sigma = t / 1000
and the model's flow velocity v:

    x0     = x_t - sigma * v                              (the model's estimate of the clean latents)
    x_next = (1 - sigma_next) * x0 + sigma_next * eps     (fresh Gaussian noise eps, not the old noise)

and the last step's x0 is the result. A deterministic solver (UniPC, Euler) at three steps gives a different,
wrong video with these weights, because it reuses the noise direction instead of drawing new noise.

That update is diffusers' ``FlowMatchEulerDiscreteScheduler`` with ``stochastic_sampling=True``, no shift,
and those sigmas. ``DMDScheduler`` fixes the sigmas (whatever step count a pipeline asks for must match) and
draws its noise from a seeded generator, so that every Wan pipeline samples it unchanged: wan_loop for the
first segment, and diffusers' ``WanImageToVideoPipeline`` for the continuations of a chained clip (which
calls ``scheduler.step`` without a generator).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteScheduler

__all__ = ["DMDScheduler"]


class DMDScheduler(FlowMatchEulerDiscreteScheduler):
    """Few-step DMD sampling at fixed training timesteps (module docstring), with a seedable noise source."""

    def __init__(self, denoising_timesteps: Sequence[int], num_train_timesteps: int = 1000):
        if not denoising_timesteps or list(denoising_timesteps) != sorted(denoising_timesteps, reverse=True):
            raise ValueError(f"DMD timesteps must be decreasing, got {list(denoising_timesteps)}")
        if denoising_timesteps[0] > num_train_timesteps or denoising_timesteps[-1] <= 0:
            raise ValueError(f"DMD timesteps must lie in (0, {num_train_timesteps}]")
        super().__init__(num_train_timesteps=num_train_timesteps, shift=1.0, stochastic_sampling=True)
        self.denoising_timesteps = tuple(int(t) for t in denoising_timesteps)
        self.num_train_timesteps = num_train_timesteps
        # Where the re-noising draws from when a pipeline's step call passes no generator; set per render.
        self.noise_generator: torch.Generator | None = None

    @property
    def steps(self) -> int:
        return len(self.denoising_timesteps)

    def set_timesteps(  # type: ignore[override]
        self, num_inference_steps: int | None = None, device: str | torch.device | None = None, **_: object
    ) -> None:
        """The fixed DMD schedule; a pipeline asking for another step count is an error, not a silent change."""
        if num_inference_steps is not None and num_inference_steps != self.steps:
            raise ValueError(
                f"this DMD-distilled model samples exactly {self.steps} steps "
                f"(timesteps {list(self.denoising_timesteps)}), not {num_inference_steps}"
            )
        sigmas = [t / self.num_train_timesteps for t in self.denoising_timesteps]
        super().set_timesteps(sigmas=sigmas, device=device if device is not None else "cpu")

    def step(self, model_output, timestep, sample, *, generator=None, **kwargs):  # type: ignore[override]
        generator = generator or self.noise_generator
        return super().step(model_output, timestep, sample, generator=generator, **kwargs)
