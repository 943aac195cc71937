"""The Helios family on diffusers' ``HeliosPipeline`` (Helios-Base) and ``HeliosPyramidPipeline`` (Helios-Distilled).

Helios generates a clip 33 frames (9 latent frames) at a time: each chunk is denoised with the clean latents of
the chunks before it as a compressed history (long, mid and short terms), then decoded on its own, and the
pipeline cuts the total to ``4k + 1`` frames. So every duration is one call with motion throughout, and the
frame counts it can make are whole chunks cut to that rule (``Preset.frame_chunk``, planning/frames.py). Its
step callback runs for every step of every chunk (and every pyramid stage), and restarts its index each time:
``denoising_steps`` says how many there are in all.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.base import Family, GeneratedClip, Steps
from framecast.engine.families.helios import build
from framecast.engine.planning.frames import chunks_for
from framecast.engine.planning.plan import RenderPlan
from framecast.errors import ConfigError

__all__ = ["HeliosFamily"]


class _WarmedUp(Exception):
    """Raised from the step callback once a warm-up has run every shape (the pyramid pipeline has no
    ``_interrupt`` check, so raising is the one way out of it)."""


class HeliosFamily(Family):
    name = "helios"
    keywords = ("helios",)
    # No first_block_cache: diffusers' cache hooks have no metadata for HeliosTransformerBlock.
    levers = frozenset({"attention", "compile", "fp8"})
    blocks = "blocks"

    # 1. Building
    @property
    def pyramid(self) -> bool:
        """Whether the preset runs the pyramid pipeline (Distilled: coarse-to-fine stages per chunk)."""
        return self.preset.pipeline_class == "HeliosPyramidPipeline"

    def load(self, folder: Path | None, dtype: torch.dtype) -> None:
        super().load(folder, dtype)
        # The preset's frame rule must be the one this VAE makes, or plans would count frames it does not.
        temporal = self.pipe.vae_scale_factor_temporal
        if self.preset.frame_step != temporal or (self.preset.frame_chunk - 1) % temporal:
            raise ConfigError(
                f"{self.preset.name}: chunks of {self.preset.frame_chunk} frames cut to {self.preset.frame_step}k+1 "
                f"do not fit a VAE that compresses time {temporal}x"
            )

    def dtypes(self, dtype: torch.dtype) -> Any:
        # The authors load the Wan VAE in float32 (diffusers' Helios docs and infer_helios.py).
        return {"default": dtype, "vae": torch.float32}

    def tiny(self) -> Any:
        return build.tiny(distilled=self.pyramid)

    # 2. Rendering
    def call_kwargs(self, plan: RenderPlan, steps: Steps | None, segment: int = 0) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, steps, segment)
        kwargs["num_latent_frames_per_chunk"] = self._latent_frames_per_chunk()
        if self.pyramid:  # its steps are per stage, and every stage runs the preset's
            kwargs["pyramid_num_inference_steps_list"] = [kwargs.pop("num_inference_steps")] * self._stages()
        return kwargs

    def denoising_steps(self, plan: RenderPlan) -> int:
        chunks = chunks_for(plan.gen_frames, self.preset.frame_step, self.preset.frame_chunk)
        if not self.pyramid:
            return plan.steps * chunks
        per_chunk = plan.steps * self._stages()
        return per_chunk * (chunks - 1 + self._first_chunk_factor())

    def generate(self, plan: RenderPlan, steps: Steps) -> GeneratedClip:
        return GeneratedClip(self.pipe(**self.call_kwargs(plan, steps)).frames[0])

    def warm_up_step(self, plan: RenderPlan, continuation: bool) -> None:
        """Every shape a render runs, once: every chunk has the first chunk's shapes, and a pyramid one per
        stage, so the first chunk's steps up to the first of its last stage."""
        wanted = 1
        if self.pyramid:
            wanted += self._first_chunk_factor() * plan.steps * (self._stages() - 1)
        calls = itertools.count(1)

        def stop(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if next(calls) >= wanted:
                raise _WarmedUp
            return tensors

        with contextlib.suppress(_WarmedUp):
            self.pipe(**{**self.call_kwargs(plan, None), "callback_on_step_end": stop})

    def _latent_frames_per_chunk(self) -> int:
        # The Wan VAE decodes n latent frames to (n - 1) * 4 + 1: 9 for a 33-frame chunk.
        return (self.preset.frame_chunk - 1) // self.pipe.vae_scale_factor_temporal + 1

    def _stages(self) -> int:
        return int(self.pipe.scheduler.config.stages)

    def _first_chunk_factor(self) -> int:
        # With is_amplify_first_chunk, a DMD sampler runs the first chunk's stages at twice the steps
        # (HeliosDMDScheduler.set_timesteps: 2n + 1 timesteps, the last dropped).
        from diffusers import HeliosDMDScheduler

        scheduler = self.pipe.scheduler
        dmd = isinstance(scheduler, HeliosDMDScheduler) or scheduler.config.get("scheduler_type") == "dmd"
        return 2 if dmd and self.preset.call_kwargs.get("is_amplify_first_chunk") else 1
