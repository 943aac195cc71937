"""The LTX-2 family on diffusers' ``LTX2Pipeline`` (LTX-2.0 and LTX-2.5): video with a joint audio track, in one
pass or in its authors' two stages, called as diffusers' docs show (``docs/source/en/api/pipelines/ltx2.md``).

A two-stage preset (``Preset.two_stage``; the docs' "Two-stages Generation" and "Two-stage generation for
LTX-2.5", the authors' ``ti2vid_two_stages.py`` and ``distilled.py``):

1. stage 1 at half the generation size: full weights with the preset's guidance stack (CFG, STG, modality
   guidance), or distilled weights on ``DISTILLED_SIGMA_VALUES`` without guidance; latents out;
2. ``LTX2LatentUpsamplePipeline``: the weights' x2 latent upsampler doubles the video latents;
3. stage 2 at the full size: the upsampled video and stage 1's audio latents, re-noised to
   ``STAGE_2_DISTILLED_SIGMA_VALUES[0]``, refined on those sigmas without guidance (full weights through their
   distilled LoRA), then decoded.

One seeded generator runs through both stages ("so stage 2 continues the noise stream", the LTX-2.5 docs), and
progress counts stage 1's steps, then stage 2's.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from framecast.engine.families.base import (
    Family,
    GeneratedClip,
    Steps,
    interrupt_after_one_step,
    seeded_generator,
)
from framecast.engine.families.ltx2 import build
from framecast.engine.planning.plan import RenderPlan
from framecast.engine.presets import Preset, Variant
from framecast.errors import ConfigError, ModelUnavailableError

__all__ = ["UNGUIDED", "Ltx2Family"]

# Every guidance term off, as the authors' distilled stages run (ltx_pipelines' SimpleDenoiser: one transformer
# pass a step). LTX2Pipeline 0.42 keeps STG (1.0), modality guidance (3.0) and audio CFG (7.0) on unless each is
# switched off, and reads an audio scale of 0.0 as "the video's" (``audio_stg_scale or stg_scale``), so all six go.
UNGUIDED: dict[str, Any] = {
    "guidance_scale": 1.0,
    "audio_guidance_scale": 1.0,
    "stg_scale": 0.0,
    "audio_stg_scale": 0.0,
    "modality_scale": 1.0,
    "audio_modality_scale": 1.0,
    "spatio_temporal_guidance_blocks": None,
}
REFINE_ADAPTER = "stage_2_distilled"  # the docs' adapter name for the stage-2 LoRA


def distilled_sigmas() -> list[float]:
    from diffusers.pipelines.ltx2.utils import DISTILLED_SIGMA_VALUES

    return list(DISTILLED_SIGMA_VALUES)


def refine_sigmas() -> list[float]:
    from diffusers.pipelines.ltx2.utils import STAGE_2_DISTILLED_SIGMA_VALUES

    return list(STAGE_2_DISTILLED_SIGMA_VALUES)


class Ltx2Family(Family):
    name = "ltx2"
    keywords = ("ltx",)
    levers = frozenset({"attention", "compile", "fp8"})
    blocks = "transformer_blocks"
    # Its text connectors and cross-attention pass padding masks, and diffusers' backend choice is process-wide:
    # the attention probe must refuse kernels that take no mask (native flash).
    masked_attention = True
    # Two stages: a learned x2 latent upsample and a refine at the generation size; no upscaler stage after it.
    upscales_itself = True

    def __init__(self, preset: Preset, variant: Variant | None = None) -> None:
        super().__init__(preset, variant)
        self.schedulers: tuple[Any, Any] = (None, None)  # stage 1 (or the only one), stage 2
        self.upsampler: Any = None  # LTX2LatentUpsamplerModel of a two-stage preset
        self.upsample_pipe: Any = None
        self.stage_2_lora_file: Path | None = None  # loaded as REFINE_ADAPTER for stage 2
        self.styles: tuple[list[str], list[float]] = ([], [])  # style LoRA adapters (creative.styles)
        self._tiny_files: tempfile.TemporaryDirectory | None = None
        self._check_steps()

    @property
    def distilled(self) -> bool:
        return self.variant is not None and self.variant.distilled

    @property
    def stage_2_lora(self) -> str:
        """The LoRA file stage 2 runs with: full weights' distilled LoRA; distilled weights refine as they are."""
        two_stage = self.preset.two_stage
        return two_stage.lora if two_stage is not None and not self.distilled else ""

    def _check_steps(self) -> None:
        # Planning counts the steps from the preset; the sigmas here are what runs, so they must agree.
        if self.distilled and self.preset.steps != len(distilled_sigmas()):
            raise ConfigError(f"{self.preset.name}: distilled weights run {len(distilled_sigmas())} steps")
        two_stage = self.preset.two_stage
        if two_stage is not None and two_stage.steps != len(refine_sigmas()):
            raise ConfigError(f"{self.preset.name}: stage 2 refines in {len(refine_sigmas())} steps")

    # 1. Building
    def tiny(self) -> Any:
        return build.tiny(self.preset.architecture)

    def load(self, folder: Path | None, dtype: torch.dtype) -> None:
        super().load(folder, dtype)
        # Each stage's sampler, whatever the folder's scheduler is configured for: full weights shift with the
        # sequence length (the convert script's dev config, which the LTX-2.5 docs restore for the full DiT),
        # distilled sigmas and the refine's are used as given (the docs' stage-2 swap).
        config = self.pipe.scheduler.config
        scheduler = type(self.pipe.scheduler)
        first = build.SCHEDULER_AS_GIVEN if self.distilled else build.SCHEDULER_DEV
        self.schedulers = (
            scheduler.from_config(config, **first),
            scheduler.from_config(config, **build.SCHEDULER_AS_GIVEN),
        )
        self.pipe.scheduler = self.schedulers[0]
        if self.preset.two_stage is None:
            return
        from diffusers.pipelines.ltx2 import LTX2LatentUpsamplePipeline

        self.upsampler = self._load_upsampler(folder, dtype)
        self.upsample_pipe = LTX2LatentUpsamplePipeline(vae=self.pipe.vae, latent_upsampler=self.upsampler)
        self.upsample_pipe.set_progress_bar_config(disable=True)
        if self.stage_2_lora:
            self.stage_2_lora_file = self._stage_2_lora_file(folder)
            self._load_stage_2_lora()

    def _load_upsampler(self, folder: Path | None, dtype: torch.dtype) -> Any:
        if folder is None:
            return build.tiny_latent_upsampler(self.preset.architecture)
        from diffusers.pipelines.ltx2 import LTX2LatentUpsamplerModel

        path = folder / "latent_upsampler"
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(self._missing(f"its x2 latent upsampler ({path})"))
        return LTX2LatentUpsamplerModel.from_pretrained(path, dtype=dtype, local_files_only=True).eval()

    def _stage_2_lora_file(self, folder: Path | None) -> Path:
        if folder is not None:
            path = folder / self.stage_2_lora
            if not path.is_file():
                raise ModelUnavailableError(self._missing(f"its stage-2 distilled LoRA ({path})"))
            return path
        # A tiny twin: random LoRA weights of its tiny transformer, as the real file cannot be built.
        self._tiny_files = tempfile.TemporaryDirectory(prefix="framecast-tiny-ltx2-")  # lives with the model
        path = Path(self._tiny_files.name) / self.stage_2_lora
        build.save_random_lora(self.pipe.transformer, path, seed=10)
        return path

    def _load_stage_2_lora(self) -> None:
        assert self.stage_2_lora_file is not None
        path = self.stage_2_lora_file
        self.pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=REFINE_ADAPTER)
        self._use_stage(1)

    def _missing(self, what: str) -> str:
        name = self.preset.name
        return (
            f"Model {name} renders in two stages, and {what} is not on this machine: run "
            f"`framecast models pull {name}` (or point FRAMECAST_MODEL_PATH at a folder that has it)."
        )

    def save(self, folder: Path) -> None:
        # Saved with LoRA layers in, the transformer's weights would be keyed by peft's wrappers; the published
        # layout keeps the LoRA in its own file.
        if self.stage_2_lora_file is not None or self.styles[0]:
            self.pipe.unload_lora_weights()
            self.styles = ([], [])
        super().save(folder)
        if self.upsampler is not None:
            self.upsampler.save_pretrained(Path(folder) / "latent_upsampler")
        if self.stage_2_lora_file is not None:
            shutil.copy(self.stage_2_lora_file, Path(folder) / self.stage_2_lora)
            self._load_stage_2_lora()

    # 2. LoRAs: style LoRAs in both stages, the stage-2 LoRA in stage 2 only
    def set_adapters(self, names: list[str], scales: list[float]) -> None:
        self.styles = (list(names), list(scales))
        self._use_stage(1)

    def unload_loras(self) -> None:
        if self.stage_2_lora_file is None:
            self.pipe.unload_lora_weights()
        elif self.styles[0]:
            self.pipe.delete_adapters(self.styles[0])
        self.styles = ([], [])
        self._use_stage(1)

    def _use_stage(self, stage: int) -> None:
        """The scheduler and LoRA adapters of ``stage`` (1: the first or only pass, 2: the refine)."""
        self.pipe.scheduler = self.schedulers[stage - 1]
        names, scales = list(self.styles[0]), list(self.styles[1])
        if stage == 2 and self.stage_2_lora_file is not None:
            names, scales = [*names, REFINE_ADAPTER], [*scales, 1.0]  # the docs: set_adapters(..., 1.0)
        if names:
            self.pipe.enable_lora()
            self.pipe.set_adapters(names, scales)
        elif self.stage_2_lora_file is not None:
            self.pipe.disable_lora()

    # 3. Rendering
    def call_kwargs(self, plan: RenderPlan, steps: Steps | None, segment: int = 0) -> dict[str, Any]:
        """One pass (or stage 1) at ``plan``'s generation size."""
        kwargs = super().call_kwargs(plan, steps, segment)
        # Condition on the rate the frames will be shown at, so the joint audio spans the whole duration even
        # when a long clip is stretched.
        kwargs["frame_rate"] = plan.fps if plan.temporal == "trim" else plan.gen_frames / plan.duration
        if self.distilled:  # the docs: "driven by an explicit sigma schedule ... and runs unguided"
            sigmas = distilled_sigmas()
            kwargs.update(UNGUIDED, sigmas=sigmas, num_inference_steps=len(sigmas))
        return kwargs

    def refine_kwargs(self, plan: RenderPlan, steps: Steps | None) -> dict[str, Any]:
        """Stage 2 at ``plan``'s generation size: the refine sigmas, re-noised to the first, unguided."""
        sigmas = refine_sigmas()
        return {
            **self.call_kwargs(plan, steps),
            **UNGUIDED,
            "sigmas": sigmas,
            "num_inference_steps": len(sigmas),
            "noise_scale": sigmas[0],
        }

    def generate(self, plan: RenderPlan, steps: Steps) -> GeneratedClip:
        if self.preset.two_stage is None:
            return self._clip(self.pipe(**self.call_kwargs(plan, steps)), plan)
        generator = seeded_generator(plan.seed)
        # 1. Stage 1 at half the size
        stage_1 = {
            **self.call_kwargs(half_size(plan), steps),
            "generator": generator,
            "output_type": "latent",
        }
        video_latents, audio_latents = self.pipe(**stage_1, return_dict=False)
        # 2. The x2 latent upsample
        upscaled = self.upsample(video_latents)
        # 3. Stage 2 at the full size
        self._use_stage(2)
        try:
            stage_2 = {**self.refine_kwargs(plan, steps.then(plan.steps)), "generator": generator}
            output = self.pipe(**stage_2, latents=upscaled, audio_latents=audio_latents)
        finally:
            self._use_stage(1)
        return self._clip(output, plan)

    def upsample(self, video_latents: torch.Tensor) -> torch.Tensor:
        """Stage 1's (denormalised) video latents at twice the width and height, by the latent upsampler."""
        self.upsampler.to(video_latents.device)
        return self.upsample_pipe(latents=video_latents, output_type="latent", return_dict=False)[0]

    def _clip(self, output: Any, plan: RenderPlan) -> GeneratedClip:
        if plan.audio != "joint":
            return GeneratedClip(output.frames[0])
        rate = int(self.pipe.vocoder.config.output_sampling_rate)
        return GeneratedClip(output.frames[0], output.audio[0].float().cpu().numpy(), rate)

    def warm_up_step(self, plan: RenderPlan, continuation: bool) -> None:
        if self.preset.two_stage is None:
            super().warm_up_step(plan, continuation)
            return
        # Both stages' shapes: stage 1's at half the size, the refine's at the full size.
        self.pipe(**{**self.call_kwargs(half_size(plan), None), **interrupt_after_one_step()})
        self._use_stage(2)
        try:
            self.pipe(**{**self.refine_kwargs(plan, None), **interrupt_after_one_step()})
        finally:
            self._use_stage(1)


def half_size(plan: RenderPlan) -> RenderPlan:
    """``plan`` at half its generation width and height: a two-stage plan's first stage."""
    return dataclasses.replace(plan, gen_width=plan.gen_width // 2, gen_height=plan.gen_height // 2)
