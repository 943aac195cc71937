"""The Wan family (Wan2.1, Wan2.2 TI2V and the A14B two-expert MoE) on diffusers' ``WanPipeline``.

It denoises through its own loop (loop.py: batched CFG, cached negative prompt, uniform TI2V timesteps), which
computes what ``WanPipeline.__call__`` computes, and decodes with ``loop.decode``; a chained long clip continues
from a frame through ``WanImageToVideoPipeline`` on the same modules (no second copy in memory). A DMD-distilled
checkpoint (FastWan) is sampled with ``DMDScheduler`` (dmd.py).
"""

from __future__ import annotations

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
    to_pil,
)
from framecast.engine.families.wan import build, loop
from framecast.engine.families.wan.dmd import DMDScheduler
from framecast.engine.parallel.rule import ParallelSupport
from framecast.engine.planning.plan import RenderPlan

__all__ = ["WanFamily"]

_I2V_COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler", "transformer", "transformer_2")


class WanFamily(Family):
    name = "wan"
    keywords = ("wan",)
    levers = frozenset({"attention", "compile", "fp8", "vae_bf16", "first_block_cache", "step_distillation"})
    continues = True
    windows = True
    blocks = "blocks"
    expert_names = ("transformer", "transformer_2")
    # loop.py runs the guidance passes itself, and diffusers' Wan transformer has a context-parallel plan.
    parallel = ParallelSupport(cfg=True, context=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.negatives = loop.NegativePromptCache()  # the preset's default negative prompt, encoded once
        self._i2v: Any = None
        self._lora_folder: tempfile.TemporaryDirectory | None = None

    # 1. Building
    def dtypes(self, dtype: torch.dtype) -> Any:
        # Wan's VAE loses detail in bf16; its authors run it in float32 (the vae_bf16 lever opts in).
        return {"default": dtype, "vae": torch.float32}

    def replaced_components(self) -> dict[str, Any]:
        # A DMD-distilled checkpoint is sampled by DMD, never by the solver its folder configures.
        if self.variant is not None and self.variant.dmd_timesteps:
            return {"scheduler": DMDScheduler(self.variant.dmd_timesteps)}
        return {}

    def tiny(self) -> Any:
        return build.tiny(self.preset.arch)

    def tiny_loras(self, count: int) -> tuple[str, tuple[str, ...]]:
        self._lora_folder = tempfile.TemporaryDirectory(prefix="framecast-tiny-lora-")  # lives with the model
        files = []
        for expert, model in enumerate(self.experts[:count]):
            subfolder = Path(self._lora_folder.name) / f"expert{expert}"
            build.save_random_lora(model, subfolder, seed=10 + expert)
            files.append(f"expert{expert}/pytorch_lora_weights.safetensors")
        return self._lora_folder.name, tuple(files)

    def load_lora_file(self, source: str, weight_name: str | None, adapter_name: str, expert: int) -> None:
        # The A14B's low-noise expert takes its LoRA through diffusers' Wan loader keyword.
        self.pipe.load_lora_weights(
            source, weight_name=weight_name, adapter_name=adapter_name, load_into_transformer_2=expert == 1
        )

    # 2. Rendering
    def call_kwargs(self, plan: RenderPlan, steps: Steps | None, segment: int = 0) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, steps, segment)
        if self.preset.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = self.preset.guidance_scale_2
        return kwargs

    def generate(self, plan: RenderPlan, steps: Steps) -> GeneratedClip:
        latents = self.latents(plan, lambda index, total, latents: steps(index))
        return GeneratedClip(loop.decode(self.pipe, latents)[0])

    def latents(
        self, plan: RenderPlan, on_step: loop.StepCallback | None, max_steps: int | None = None
    ) -> torch.Tensor:
        """The final latents of ``plan``'s first segment, as ``WanPipeline`` computes them (its steps 3-6): the
        prompts encoded (the negative one from the cache), then denoised by loop.py."""
        pipe = self.pipe
        # WanPipeline's rule: the first expert's scale decides whether there is guidance at all.
        positive, negative = loop.encode_prompts(
            pipe,
            plan.prompt,
            plan.negative_prompt,
            guidance=plan.guidance_scale > 1.0,
            device=pipe._execution_device,
            max_sequence_length=self._max_sequence_length(),
            negative_cache=self.negatives,
        )
        return loop.denoise(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            guidance_scale_2=self.preset.guidance_scale_2,
            generator=seeded_generator(plan.seed),
            on_step=on_step,
            max_steps=max_steps,
            windows=plan.windows,
            window_frames=plan.window_frames,
            cfg_split=self.cfg_split,
        )

    def tokens(self, plan: RenderPlan) -> int:
        # One window's latents (the whole clip's without windows), patchified.
        pipe = self.pipe
        frames = plan.window_frames if len(plan.windows) > 1 else plan.gen_frames
        _, ph, pw = self.experts[0].config.patch_size
        latent_frames = (frames - 1) // pipe.vae_scale_factor_temporal + 1
        scale = pipe.vae_scale_factor_spatial
        return latent_frames * (plan.gen_height // (scale * ph)) * (plan.gen_width // (scale * pw))

    def _max_sequence_length(self) -> int:
        length = self.preset.call_kwargs.get("max_sequence_length", 512)  # WanPipeline's default
        assert isinstance(length, int)
        return length

    def continuation(self) -> Any:
        """The image-to-video pipeline on the same modules, for chained segments."""
        if self._i2v is None:
            from diffusers import WanImageToVideoPipeline

            components = {k: v for k, v in self.pipe.components.items() if k in _I2V_COMPONENTS}
            self._i2v = WanImageToVideoPipeline(
                **components, expand_timesteps=self.pipe.config.expand_timesteps
            )
            self._i2v.set_progress_bar_config(disable=True)
        return self._i2v

    def continue_clip(
        self, frame: torch.Tensor, plan: RenderPlan, segment: int, steps: Steps
    ) -> torch.Tensor:
        kwargs = self.call_kwargs(plan, steps, segment)
        # A stochastic sampler (DMD) re-noises from the segment's seeded generator, as the loop does.
        if isinstance(self.pipe.scheduler, DMDScheduler):
            self.pipe.scheduler.noise_generator = kwargs["generator"]
        return self.continuation()(image=to_pil(frame), **kwargs).frames[0]

    def warm_up_step(self, plan: RenderPlan, continuation: bool) -> None:
        first = self.pipe.transformer
        for expert in self.experts:  # step 1 runs pipe.transformer: make each expert that, in turn
            self.pipe.transformer = expert
            try:
                self.latents(plan, None, max_steps=1)
            finally:
                self.pipe.transformer = first
        if continuation:
            from PIL import Image

            image = Image.new("RGB", (plan.gen_width, plan.gen_height))
            self.continuation()(image=image, **{**self.call_kwargs(plan, None), **interrupt_after_one_step()})
