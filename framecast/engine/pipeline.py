"""``DiffusersEngine``: one preset loaded once, rendering plans through its diffusers pipeline.

Wan presets denoise through Framecast's own loop (wan_loop.py: batched CFG, cached negative prompt) on the
pipeline's modules, and decode with the pipeline's VAE; it computes what ``WanPipeline`` computes. LTX-2 and
the image-to-video continuation of chained clips run their diffusers pipelines as they are.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framecast.config import Settings
from framecast.engine import accel, buckets, presets, speed, tiny, wan_loop, weights
from framecast.engine.base import RenderContext, RenderResult
from framecast.engine.creative import Creative, joint_soundtrack, shot_plans, shots_output
from framecast.engine.encode import encode_mp4
from framecast.engine.frames import output_frames
from framecast.engine.plan import PlanStage, RenderPlan, make_plan
from framecast.engine.presets import Preset
from framecast.errors import ConfigError, RenderStopped
from framecast.schema import TextToVideoInput

logger = logging.getLogger(__name__)

OFFLOAD_MODES = ("none", "model", "sequential", "group", "auto")
_I2V_COMPONENTS = ("tokenizer", "text_encoder", "vae", "scheduler", "transformer", "transformer_2")


def pick_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("FRAMECAST_DEVICE=cuda but torch sees no CUDA device")
    return requested


def cuda_total_gb() -> float | None:
    """Memory of the first CUDA device in GB, or ``None`` without one (what ``FRAMECAST_MODEL=auto`` asks)."""
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory / 2**30


def wan_vae_dtype(name: str, device: str) -> torch.dtype:
    """The Wan VAE's dtype for ``FRAMECAST_VAE_DTYPE``; the CPU always runs float32."""
    if name not in ("float32", "bfloat16"):
        raise ConfigError(f"FRAMECAST_VAE_DTYPE={name!r}: choose float32 (the default) or bfloat16")
    return torch.bfloat16 if name == "bfloat16" and device == "cuda" else torch.float32


def pick_offload(requested: str, device: str, free_gb: float, preset: Preset) -> str:
    """The memory mode: as asked, or (``auto``) the fastest one that fits ``free_gb`` of GPU memory."""
    if requested not in OFFLOAD_MODES:
        raise ConfigError(f"FRAMECAST_OFFLOAD={requested!r}: choose one of {', '.join(OFFLOAD_MODES)}")
    if requested != "auto":
        return requested
    if device != "cuda" or free_gb >= preset.memory_gb:
        return "none"
    # Model offload keeps one component on the GPU at a time: the largest is about half the total.
    return "model" if free_gb >= preset.memory_gb / 2 else "group"


@dataclass
class GeneratedClip:
    """What the pipeline made, before resizing and encoding."""

    video: torch.Tensor  # (frames, 3, height, width) in [0, 1], at the generation size
    audio: np.ndarray | None = None  # (channels, samples) in [-1, 1]
    sample_rate: int | None = None


class DiffusersEngine:
    """Renders with a preset's diffusers pipeline; ``load`` once, then ``render`` many times."""

    def __init__(self, preset: Preset, settings: Settings, *, stages: Sequence[PlanStage] = ()) -> None:
        self.preset = preset
        self.settings = settings
        self.stages = tuple(stages)  # the creative stages (style, prompt optimiser, shots), in order
        self.name = preset.name
        self.device = "cpu"
        self.offload = "none"
        self.pipe: Any = None
        self._i2v: Any = None
        self._negatives = wan_loop.NegativePromptCache()  # the preset's default negative prompt, encoded once
        self.creative: Creative | None = None  # creative.py: thinking_type, shots, style (LoRA), audio stage
        self.compiled = False  # FRAMECAST_COMPILE: transformer blocks compiled, shots in frame buckets

    # Loading
    def load(self) -> None:
        if self.pipe is not None:
            return
        self.device = pick_device(self.settings.device)
        dtype = getattr(torch, self.preset.dtype) if self.device == "cuda" else torch.float32
        started = time.monotonic()
        pipe = self._build(dtype, wan_vae_dtype(self.settings.vae_dtype, self.device))
        if self.preset.flow_shift is not None and "flow_shift" in pipe.scheduler.config:
            pipe.scheduler = type(pipe.scheduler).from_config(
                pipe.scheduler.config, flow_shift=self.preset.flow_shift
            )
        pipe.set_progress_bar_config(disable=True)
        if self.preset.variant:
            # Opt-in and quality-changing (LoRAs fused into the weights, a block cache): see the preset.
            accel.apply_variant(pipe, presets.VARIANTS[self.preset.variant])
        self._place(pipe)
        self.pipe = pipe
        # Probing, FP8 and compiling need the weights resident on the GPU; offloaded ones move there per forward.
        if self.device == "cuda" and self.offload == "none" and self.preset.family == "wan":
            speed.accelerate(self)
        elif self.settings.fp8:
            logger.warning(
                "FRAMECAST_FP8=1 ignored: it needs a Wan preset on a CUDA GPU without offload (here: %s on %s, "
                "offload %s)",
                self.name,
                self.device,
                self.offload,
            )
        self.creative = Creative(self.settings, self.preset, self.device)
        logger.info(
            "loaded %s on %s (offload %s) in %.1f s",
            self.name,
            self.device,
            self.offload,
            time.monotonic() - started,
        )

    def _build(self, dtype: torch.dtype, vae_dtype: torch.dtype) -> Any:
        variant = presets.VARIANTS.get(self.preset.variant)
        if self.preset.tiny and not self.settings.model_path:
            return tiny.build_tiny(variant.base if variant else self.preset.name)
        import diffusers

        folder = weights.weights_folder(self.preset, self.settings.model_path)
        pipeline_class = getattr(diffusers, self.preset.pipeline_class)
        # Wan's VAE loses detail in bf16; its authors run it in float32 (FRAMECAST_VAE_DTYPE chooses).
        dtypes: Any = {"default": dtype, "vae": vae_dtype} if self.preset.family == "wan" else dtype
        parts: dict[str, Any] = {}
        if variant is not None and variant.dmd_timesteps:
            # DMD replaces the checkpoint's scheduler, so the one its folder configures is not built at all.
            from framecast.engine.dmd import DMDScheduler

            parts["scheduler"] = DMDScheduler(variant.dmd_timesteps)
        return pipeline_class.from_pretrained(folder, dtype=dtypes, local_files_only=True, **parts)

    def _place(self, pipe: Any) -> None:
        free_gb = torch.cuda.mem_get_info()[0] / 2**30 if self.device == "cuda" else 0.0
        self.offload = pick_offload(self.settings.offload, self.device, free_gb, self.preset)
        if self.offload == "none":
            pipe.to(self.device)
        elif self.offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif self.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=self.device)
        else:
            pipe.enable_group_offload(
                onload_device=torch.device(self.device),
                offload_type="leaf_level",
                use_stream=self.device == "cuda",
            )
        # The VAE decode is where most out-of-memory errors happen; tiling costs little when memory is short.
        if self.offload != "none" and hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()
        # A bf16 Wan VAE decodes 8-15% faster again with NDHWC convolutions (benchmarks.md): same values.
        if self.device == "cuda" and self.preset.family == "wan" and pipe.vae.dtype == torch.bfloat16:
            accel.channels_last_3d(pipe.vae)

    # Rendering
    def render(self, request: TextToVideoInput, ctx: RenderContext, out_path: Path) -> RenderResult:
        # Creative hook (creative.py): thinking_type, multi-clip and style shape the plan, logging to the job;
        # the style's LoRA (if configured) is swapped in; presets without joint audio get the audio stage.
        self.load()
        assert self.creative is not None
        stages = (*self.stages, *self.creative.stages(ctx.log))
        plan = make_plan(request, self.preset, stages=stages, separate_audio=True)
        self.creative.style_loras.activate(self.pipe, request.style)
        return self.render_plan(plan, ctx, out_path)

    def render_plan(self, plan: RenderPlan, ctx: RenderContext, out_path: Path) -> RenderResult:
        # 1. Denoise and decode, shot by shot (one shot unless multi-clip; hard cuts between shots)
        plans = shot_plans(plan, self.preset)
        if self.compiled:  # a compiled transformer generates shots in frame buckets, not at every length
            plans = [buckets.bucketed(p, self.preset) for p in plans]
        total, done, clips = sum(p.steps * p.segments for p in plans), 0, []
        for shot_plan in plans:  # steps count across shots, so progress never goes backwards
            clips.append((self.generate(shot_plan, ctx, steps_done=done, steps_total=total), shot_plan))
            done += shot_plan.steps * shot_plan.segments

        # 2. Map to the exact output and encode, with one audio track over the whole video
        _stop_if_asked(ctx)
        audio, sample_rate = self._soundtrack([clip for clip, _ in clips], plan, ctx)
        size = encode_mp4(
            out_path,
            itertools.chain.from_iterable(output_frames(clip.video, shot_plan) for clip, shot_plan in clips),
            width=plan.width,
            height=plan.height,
            fps=plan.fps,
            frame_count=plan.frames,
            audio=audio,
            sample_rate=sample_rate,
        )
        ctx.log(f"encoded {plan.width}x{plan.height}, {plan.frames} frames at {plan.fps} fps, {size} bytes")
        return RenderResult(
            path=out_path,
            width=plan.width,
            height=plan.height,
            frames=plan.frames,
            fps=plan.fps,
            has_audio=audio is not None,
            seed=plan.seed,
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            shots=shots_output(plan),
            extra={"file_size": size, "preset": self.name},
        )

    def generate(
        self, plan: RenderPlan, ctx: RenderContext, *, steps_done: int = 0, steps_total: int | None = None
    ) -> GeneratedClip:
        """Run the pipeline for ``plan``: the generated frames, and the joint audio when the plan has it.
        Steps are reported as ``steps_done + i`` of ``steps_total`` (default: all of this plan's steps)."""
        self.load()  # a no-op when warm
        if len(plan.shots) != 1:
            raise NotImplementedError("multi-shot plans need the shots stage (framecast/engine/shots.py)")
        ctx.log(describe(plan))
        _stop_if_asked(ctx)
        total = steps_total or plan.steps * plan.segments
        with torch.inference_mode():
            clip = self._first_segment(plan, ctx, steps_done, total)
            video = clip.video
            # "chain": each further segment starts from the last frame so far; its first frame repeats it.
            for segment in range(1, plan.segments):
                kwargs = self.call_kwargs(
                    plan, ctx, steps_done + segment * plan.steps, total, segment=segment
                )
                # A stochastic sampler (dmd.py) re-noises from the segment's seeded generator, as wan_loop does.
                if hasattr(self.pipe.scheduler, "noise_generator"):
                    self.pipe.scheduler.noise_generator = kwargs["generator"]
                more = self.continuation()(image=_to_pil(video[-1]), **kwargs).frames[0]
                video = torch.cat([video, more[1:].to(video.device)])
        return dataclasses.replace(clip, video=video)

    def _first_segment(self, plan: RenderPlan, ctx: RenderContext, done: int, total: int) -> GeneratedClip:
        if self.preset.family == "wan":
            latents = self.wan_latents(plan, _loop_callback(ctx, done, total))
            return GeneratedClip(self._decode(latents)[0])
        output = self.pipe(**self.call_kwargs(plan, ctx, done, total))
        if plan.audio != "joint":
            return GeneratedClip(output.frames[0])
        rate = int(self.pipe.vocoder.config.output_sampling_rate)
        return GeneratedClip(output.frames[0], output.audio[0].float().cpu().numpy(), rate)

    def wan_latents(
        self, plan: RenderPlan, on_step: wan_loop.StepCallback | None, max_steps: int | None = None
    ) -> torch.Tensor:
        """The final latents of ``plan``'s first segment, as ``WanPipeline`` computes them (its steps 3-6): the
        prompts encoded (the negative one from the cache), then denoised by wan_loop."""
        pipe = self.pipe
        # WanPipeline's rule: the first expert's scale decides whether there is guidance at all.
        guidance = plan.guidance_scale > 1.0
        positive, negative = wan_loop.encode_prompts(
            pipe,
            plan.prompt,
            plan.negative_prompt,
            guidance=guidance,
            device=pipe._execution_device,
            max_sequence_length=self._max_sequence_length(),
            negative_cache=self._negatives,
        )
        return wan_loop.denoise(
            pipe,
            prompt_embeds=positive,
            negative_prompt_embeds=negative,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            guidance_scale_2=self.preset.guidance_scale_2,
            generator=_generator(plan.seed),
            on_step=on_step,
            max_steps=max_steps,
        )

    def _max_sequence_length(self) -> int:
        length = self.preset.call_kwargs.get("max_sequence_length", 512)  # WanPipeline's default
        assert isinstance(length, int)
        return length

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        """The latents as (batch, frames, 3, height, width) in [0, 1], decoded as ``WanPipeline`` does."""
        from diffusers.utils.torch_utils import get_module_execution_device

        vae = self.pipe.vae
        # The VAE's execution device, not its weights' one: with offload the weights wait on the CPU.
        latents = latents.to(get_module_execution_device(vae), vae.dtype)
        if vae.dtype == torch.bfloat16 and latents.is_cuda:  # its weights are channels-last (_place)
            latents = latents.contiguous(memory_format=torch.channels_last_3d)
        mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(latents)
        inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(latents)
        video = vae.decode(latents / inv_std + mean, return_dict=False)[0]
        frames = self.pipe.video_processor.postprocess_video(video, output_type="pt")
        self.pipe.maybe_free_model_hooks()  # model offload: back to the CPU, as at the end of a pipeline call
        return frames

    def continuation(self) -> Any:
        """The image-to-video pipeline on the same modules (no second copy in memory), for "chain"."""
        if self._i2v is None:
            from diffusers import WanImageToVideoPipeline

            components = {k: v for k, v in self.pipe.components.items() if k in _I2V_COMPONENTS}
            self._i2v = WanImageToVideoPipeline(
                **components, expand_timesteps=self.pipe.config.expand_timesteps
            )
            self._i2v.set_progress_bar_config(disable=True)
        return self._i2v

    def _soundtrack(
        self, clips: list[GeneratedClip], plan: RenderPlan, ctx: RenderContext
    ) -> tuple[Any, Any]:
        """The audio stage's track (creative.py), or the shots' joint audio end to end, or none."""
        if plan.audio == "separate":
            assert self.creative is not None
            return self.creative.soundtrack(plan, ctx.log, ctx.should_stop)
        if plan.audio == "joint":
            return joint_soundtrack([(clip.audio, clip.sample_rate) for clip in clips], plan)
        return None, None

    def call_kwargs(
        self,
        plan: RenderPlan,
        ctx: RenderContext,
        steps_done: int = 0,
        steps_total: int | None = None,
        *,
        segment: int = 0,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            generator=_generator(plan.seed + segment),
            output_type="pt",
            callback_on_step_end=_step_callback(ctx, steps_done, steps_total or plan.steps),
            **self.preset.call_kwargs,
        )
        if self.preset.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = self.preset.guidance_scale_2
        if self.preset.family == "ltx2":
            # Condition on the rate the frames will be shown at, so the joint audio spans the whole duration
            # even when a long clip is stretched.
            kwargs["frame_rate"] = plan.fps if plan.temporal == "trim" else plan.gen_frames / plan.duration
        return kwargs


def describe(plan: RenderPlan) -> str:
    line = (
        f"{plan.preset}: {plan.gen_width}x{plan.gen_height}, {plan.gen_frames} frames, {plan.steps} steps, "
        f"seed {plan.seed} -> {plan.width}x{plan.height}, {plan.frames} frames at {plan.fps} fps"
    )
    if plan.temporal == "stretch":
        slowed = plan.frames / plan.gen_frames
        line += f"; longer than the model's {plan.gen_frames} frames: motion slowed x{slowed:.2f}"
    elif plan.temporal == "chain":
        line += f"; {plan.segments} segments, each continuing from the last frame of the one before"
    if plan.guidance_scale <= 1.0:
        line += "; no CFG (a distilled variant), so the negative prompt has no effect"
    return line


def _to_pil(frame: torch.Tensor) -> Any:
    from PIL import Image

    array = (frame.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def _stop_if_asked(ctx: RenderContext) -> None:
    reason = ctx.should_stop()
    if reason:
        raise RenderStopped(reason)


def _generator(seed: int) -> torch.Generator:
    # On the CPU whatever the device, so a seed gives the same noise on every machine.
    return torch.Generator("cpu").manual_seed(seed % 2**32)


def _step_done(ctx: RenderContext, step: int, total: int) -> None:
    ctx.log(f"step {step}/{total}")
    ctx.progress(step, total)
    _stop_if_asked(ctx)  # raising here leaves the loop now, not after the remaining steps


def _step_callback(ctx: RenderContext, done: int, total: int) -> Any:
    """A diffusers ``callback_on_step_end`` reporting steps ``done + 1`` ... of ``total``."""

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        _step_done(ctx, done + step + 1, total)
        return tensors

    return on_step_end


def _loop_callback(ctx: RenderContext, done: int, total: int) -> wan_loop.StepCallback:
    """wan_loop's ``on_step`` reporting steps ``done + 1`` ... of ``total``."""

    def on_step(step: int, steps: int, latents: torch.Tensor) -> None:
        _step_done(ctx, done + step + 1, total)

    return on_step
