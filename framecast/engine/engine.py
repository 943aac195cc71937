"""``DiffusersEngine``: one preset loaded once, rendering plans through its model family.

It loads (weights folder or tiny model, the variant's levers, the memory mode, the settings' levers), plans
(creative stages, shots, compile buckets, the upscaler on offer), generates each shot through the family (chaining
segments from their last frame when the plan says so), runs the upscaler stage when the plan names it, adds the
soundtrack and encodes the MP4. Everything that differs between model lines is behind the ``Family`` interface
(families/); the speed levers are functions of speed/, the stages of stages/.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from framecast.engine import weights
from framecast.engine.base import RenderContext, RenderResult
from framecast.engine.continuity import drift, match_colour, same_picture
from framecast.engine.creative import Creative, joint_soundtrack
from framecast.engine.encode import encode_mp4
from framecast.engine.families import get_family
from framecast.engine.families.base import Family, GeneratedClip, Steps, stop_if_asked
from framecast.engine.frames import output_frames
from framecast.engine.loading import model_dtype, pick_device, pick_offload, place
from framecast.engine.options import EngineOptions
from framecast.engine.planning import buckets
from framecast.engine.planning.plan import (
    PlanStage,
    RenderPlan,
    make_plan,
    shot_plans,
    shots_output,
    summary,
)
from framecast.engine.planning.upscale import UpscalerSpec
from framecast.engine.presets import TINY_PREFIX, VARIANTS, Preset
from framecast.engine.speed import lever
from framecast.engine.speed.attention import AttentionOptions
from framecast.engine.speed.cache import CacheOptions
from framecast.engine.speed.compile import CompileOptions, warm_up
from framecast.engine.speed.distill import DistillOptions
from framecast.engine.speed.fp8 import Fp8Options, fp8_matmul_supported
from framecast.engine.speed.vae import VaeOptions
from framecast.engine.stages import TINY_UPSCALER, UPSCALER_NAME
from framecast.engine.stages.upscale import Upscaler, load_upscaler, upscaler_offer
from framecast.errors import ConfigError
from framecast.schema import TextToVideoInput

__all__ = ["DiffusersEngine", "describe"]

logger = logging.getLogger(__name__)


class DiffusersEngine:
    """Renders with a preset's model family; ``load`` once, then ``render`` many times."""

    def __init__(self, preset: Preset, options: EngineOptions, *, stages: Sequence[PlanStage] = ()) -> None:
        self.preset = preset
        self.options = options
        self.stages = tuple(stages)  # creative stages before the engine's own (tests)
        self.name = preset.name
        self.variant = VARIANTS.get(preset.variant)
        self.model: Family = get_family(preset.family)(preset, self.variant)
        check_long_clips(preset, self.model)
        self.device = "cpu"
        self.offload = "none"
        self.creative: Creative | None = None  # thinking_type, shots, style (LoRA), audio stage
        self.compiled = False  # the compile lever: shots generate in frame buckets
        self._upscaler: Upscaler | None = None  # the upscaler stage, loaded on the first plan that names it

    @property
    def pipe(self) -> Any:
        return self.model.pipe

    # Loading
    def load(self) -> None:
        if self.model.pipe is not None:
            return
        started = time.monotonic()
        self.device = pick_device(self.options.device)
        # 1. The pipeline: from the weights' folder, or the family's tiny model of random weights
        folder = None
        if not self.preset.tiny or self.options.model_path:
            folder = weights.weights_folder(self.preset, self.options.model_path)
        self.model.load(folder, model_dtype(self.preset, self.device))
        # 2. The variant's levers change the weights themselves, so they go first, on the CPU copy
        self._variant_levers()
        # 3. The memory mode that fits the card
        free_gb = torch.cuda.mem_get_info()[0] / 2**30 if self.device == "cuda" else 0.0
        self.offload = pick_offload(self.options.offload, self.device, free_gb, self.preset)
        place(self.pipe, self.device, self.offload)
        # 4. The settings' levers
        self._setting_levers()
        if self.creative is None:
            self.creative = Creative(self.options, self.preset, self.device)
        logger.info(
            "loaded %s on %s (offload %s) in %.1f s",
            self.name,
            self.device,
            self.offload,
            time.monotonic() - started,
        )

    def _apply(self, name: str, options: Any) -> None:
        module = importlib.import_module(f"framecast.engine.speed.{lever(name).module}")
        module.apply(self.model.modules(), options)

    def _supported(self, name: str) -> bool:
        return name in self.model.levers

    def _variant_levers(self) -> None:
        variant = self.variant
        if variant is None:
            return
        wanted = {
            "step_distillation": bool(variant.lora_files or variant.dmd_timesteps),
            "first_block_cache": variant.first_block_cache is not None,
        }
        for name in (n for n, on in wanted.items() if on and not self._supported(n)):
            raise ConfigError(
                f"{variant.name} needs the {name} lever, which the {self.model.name} family lacks"
            )
        if variant.lora_files:
            repo, files = variant.lora_repo, variant.lora_files
            # A tiny twin of a LoRA variant cannot take the real files (made for the full-size model): random
            # LoRAs of its experts stand in, unless the variant names LoRAs on this machine, made for it.
            if self.preset.name.startswith(TINY_PREFIX) and not Path(repo).is_dir():
                repo, files = self.model.tiny_loras(len(files))
            self._apply("step_distillation", DistillOptions(variant.name, repo, files))
        if variant.first_block_cache is not None:
            self._apply("first_block_cache", CacheOptions(variant.first_block_cache))

    def _setting_levers(self) -> None:
        # Probing, FP8 and compiling need the weights resident on the GPU; offloaded ones move there per forward.
        resident = self.device == "cuda" and self.offload == "none"
        where = f"{self.name} on {self.device}, offload {self.offload}"
        if self.options.vae_dtype == "bfloat16" and self._usable("vae_bf16", self.device == "cuda", where):
            self._apply("vae_bf16", VaeOptions())
        if resident and self._supported("attention"):
            self._apply("attention", AttentionOptions())
        if self.options.fp8 and self._usable("fp8", resident, where):
            if fp8_matmul_supported(torch.device(self.device)):
                self._apply("fp8", Fp8Options())
            else:
                logger.warning(
                    "FRAMECAST_FP8=1 ignored: FP8 matmuls need a CUDA GPU of compute capability 8.9+"
                )
        if self.options.compile and self._usable("compile", resident, where):
            self.compile_and_warm()

    def _usable(self, name: str, here: bool, where: str) -> bool:
        """Whether the setting's lever can run: supported by the family, and on this device and memory mode."""
        setting = lever(name).setting
        if not self._supported(name):
            logger.warning("%s ignored: the %s family does not support it", setting, self.model.name)
            return False
        if not here:
            logger.warning(
                "%s ignored: it needs a CUDA GPU with the weights resident (here: %s)", setting, where
            )
        return here

    def compile_and_warm(self, backend: str = "inductor") -> dict:
        """Compile the experts' blocks and warm the shapes ``FRAMECAST_COMPILE_WARMUP`` names now, at load; a
        shape not warmed compiles on its first request. Returns seconds per shape."""
        preset = self.preset
        spec, _ = self.upscaler_offer()
        shapes = buckets.warmup_shapes(preset, self.options.compile_warmup, spec)  # a bad setting fails first
        # One graph per shape, batch (CFG or not) and call (text-to-video, the continuation).
        graphs = 2 * len(buckets.warmup_shapes(preset, "all", spec))
        cache_dir = str(self.options.data_dir / "compile-cache")
        self._apply("compile", CompileOptions(backend=backend, cache_dir=cache_dir, graphs=graphs))
        self.compiled = True
        plan = make_plan(TextToVideoInput.model_validate({"prompt": "warm-up"}), preset)
        longest = buckets.frame_buckets(preset)[-1]
        chained = preset.extend == "chain"

        def one_step(width: int, height: int, frames: int) -> None:
            sized = dataclasses.replace(plan, gen_width=width, gen_height=height, gen_frames=frames)
            with torch.inference_mode():
                self.model.warm_up_step(sized, continuation=chained and frames == longest)

        seconds = warm_up(one_step, shapes)
        logger.info("compiled %s's transformer blocks; warm-up (s per shape): %s", self.name, seconds)
        return seconds

    # Planning and rendering
    def plan(self, request: TextToVideoInput, log: Any) -> RenderPlan:
        """The render plan of ``request``, without loading the model: the creative stages (thinking_type,
        multi-clip, style) shape it, logging to ``log``; the upscaler the engine offers sets how it reaches
        the output size (and a bicubic upscale says why in ``log``)."""
        if self.creative is None:  # planning alone (framecast plan) needs no model, only the creative stages
            self.creative = Creative(self.options, self.preset, pick_device(self.options.device))
        stages = (*self.stages, *self.creative.stages(log))
        stretch = self.options.long_clips == "stretch"
        spec, absent = self.upscaler_offer()
        plan = make_plan(
            request, self.preset, stages=stages, separate_audio=True, stretch=stretch, upscaler=spec
        )
        if plan.upscaler == "bicubic":
            log(bicubic_line(plan, spec, absent))
        return plan

    def render(self, request: TextToVideoInput, ctx: RenderContext, out_path: Any) -> RenderResult:
        # The plan (also in the job's log), the style's LoRA (if configured) swapped in, then the render.
        plan = self.logged_plan(request, ctx)
        self.activate_style(request.style)
        return self.render_plan(plan, ctx, out_path)

    def logged_plan(self, request: TextToVideoInput, ctx: RenderContext) -> RenderPlan:
        """Load (once), plan ``request`` and write the plan to ``ctx``'s log."""
        self.load()
        plan = self.plan(request, ctx.log)
        ctx.log(f"plan: {json.dumps(summary(plan, self.preset))}")
        return plan

    def activate_style(self, style: Any) -> None:
        assert self.creative is not None
        self.creative.style_loras.activate(self.model, style)

    def render_plan(self, plan: RenderPlan, ctx: RenderContext, out_path: Any) -> RenderResult:
        return self.finish(plan, self.generate_shots(plan, ctx), ctx, out_path)

    def generate_shots(self, plan: RenderPlan, ctx: RenderContext) -> list[tuple[GeneratedClip, RenderPlan]]:
        """Denoise and decode, shot by shot (one shot unless multi-clip; hard cuts between shots): each clip
        with the plan of its shot."""
        plans = shot_plans(plan, self.preset)
        if self.compiled:  # a compiled transformer generates shots in frame buckets, not at every length
            plans = [buckets.bucketed(p, self.preset) for p in plans]
        total, done, clips = sum(self._steps(p) for p in plans), 0, []
        for shot_plan in plans:  # steps count across shots, so progress never goes backwards
            clips.append((self.generate(shot_plan, ctx, steps_done=done, steps_total=total), shot_plan))
            done += self._steps(shot_plan)
        return clips

    def finish(
        self,
        plan: RenderPlan,
        clips: list[tuple[GeneratedClip, RenderPlan]],
        ctx: RenderContext,
        out_path: Any,
    ) -> RenderResult:
        """The upscaler stage where the plan names it, then map the shots' clips to the exact output and encode,
        with one audio track over the whole video (on rank 0 alone in a GPU group)."""
        stop_if_asked(ctx)
        clips = [(self.upscale(clip, shot_plan, ctx), shot_plan) for clip, shot_plan in clips]
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
            extra={
                "file_size": size,
                "preset": self.name,
                **({"upscaled": plan.upscaler} if plan.upscaler != "none" else {}),
            },
        )

    def generate(
        self, plan: RenderPlan, ctx: RenderContext, *, steps_done: int = 0, steps_total: int | None = None
    ) -> GeneratedClip:
        """Run the family for ``plan``: the generated frames, and the joint audio when the plan has it.
        Steps are reported as ``steps_done + i`` of ``steps_total`` (default: all of this plan's steps)."""
        self.load()  # a no-op when warm
        if len(plan.shots) != 1:
            raise NotImplementedError("multi-shot plans are split by planning.shot_plans first")
        if plan.temporal == "shots":
            raise NotImplementedError("a long clip made of shots is split by the creative shots stage first")
        ctx.log(describe(plan))
        stop_if_asked(ctx)
        steps = Steps(ctx, steps_done, steps_total or self._steps(plan))
        with torch.inference_mode():
            clip = self.model.generate(plan, steps)
            video = clip.video
            # "chain": each further segment starts from the last frame so far (its first frame repeats it), its
            # colours matched to that frame so that they do not drift from segment to segment.
            for segment in range(1, plan.segments):
                steps = steps.then(self.model.denoising_steps(plan))
                more = self.model.continue_clip(video[-1], plan, segment, steps).to(video.device)
                if same_picture(more[0], video[-1]):
                    more = match_colour(more, video[-1])
                else:
                    ctx.log(
                        f"segment {segment + 1}: not colour-matched, its first frame is not the frame it continues"
                    )
                video = torch.cat([video, more[1:]])
        if plan.segments > 1 or plan.temporal == "window":
            ctx.log(f"continuity: {drift(video, plan.fps).line()}")
        return dataclasses.replace(clip, video=video)

    def upscaler_offer(self) -> tuple[UpscalerSpec | None, str]:
        """The learned upscaler planning may use (``None`` when the family upscales in its own pipeline), and
        why it cannot run here ("" when it can)."""
        if self.model.upscales_itself:
            return None, ""
        if self._upscaler is None and self.options.upscaler_model == TINY_UPSCALER:
            # Built in code in a moment, with no weights to look for: load it now, its spec is its own.
            self._upscaler = load_upscaler(TINY_UPSCALER, self.device)
        if self._upscaler is not None:
            return self._upscaler.spec, ""
        return upscaler_offer(self.options.upscaler_model)

    def upscale(self, clip: GeneratedClip, plan: RenderPlan, ctx: RenderContext) -> GeneratedClip:
        """The upscaler stage, when the plan names it: the frames the output uses, at ``x plan.upscale``."""
        if plan.upscaler in ("none", "bicubic"):
            return clip
        stop_if_asked(ctx)
        if self._upscaler is None:
            self._upscaler = load_upscaler(self.options.upscaler_model, self.device)
        # A stretched clip maps all its frames over the output; otherwise only the first plan.frames are shown.
        video = clip.video if plan.temporal == "stretch" else clip.video[: plan.frames]
        upscaled = self._upscaler.upscale(
            video, plan.upscale, plan.seed, log=ctx.log, should_stop=ctx.should_stop
        )
        return dataclasses.replace(clip, video=upscaled)

    def _steps(self, plan: RenderPlan) -> int:
        """All denoising steps of ``plan``, every segment's."""
        return self.model.denoising_steps(plan) * plan.segments

    def _soundtrack(
        self, clips: list[GeneratedClip], plan: RenderPlan, ctx: RenderContext
    ) -> tuple[np.ndarray | None, int | None]:
        """The audio stage's track (creative/), or the shots' joint audio end to end, or none."""
        if plan.audio == "separate":
            assert self.creative is not None
            return self.creative.soundtrack(plan, ctx.log, ctx.should_stop)
        if plan.audio == "joint":
            return joint_soundtrack([(clip.audio, clip.sample_rate) for clip in clips], plan)
        return None, None


LONG_CLIP_METHODS = ("chain", "window", "shots", "stretch")


def check_long_clips(preset: Preset, model: Family) -> None:
    """A preset's long-clip method must be one its family can run: chaining needs a continuation, windows need
    the family's own loop; shots and (opt-in) stretch work on every family."""
    method = preset.extend
    if method not in LONG_CLIP_METHODS:
        raise ConfigError(
            f"{preset.name}: unknown long-clip method {method!r} ({', '.join(LONG_CLIP_METHODS)})"
        )
    if (method == "chain" and not model.continues) or (method == "window" and not model.windows):
        raise ConfigError(
            f"{preset.name} makes long clips by {method!r}, which the {model.name} family cannot do"
        )


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
    elif plan.temporal == "window":
        starts = ", ".join(str(s) for s in plan.windows)
        line += (
            f"; longer than the model's {plan.window_frames} frames: {len(plan.windows)} overlapping windows "
            f"(from frames {starts}) denoised together, blended in latent space"
        )
    if plan.refine_steps:
        line += (
            f"; two stages: {plan.gen_width // 2}x{plan.gen_height // 2}, a learned x2 latent upsample, then "
            f"{plan.refine_steps} refining steps"
        )
    if plan.guidance_scale <= 1.0:
        line += "; no CFG (a distilled variant), so the negative prompt has no effect"
    if plan.upscaler not in ("none", "bicubic"):
        line += f"; upscaled x{plan.upscale:g} by {plan.upscaler}, then cropped or downscaled to the output"
    return line


def bicubic_line(plan: RenderPlan, spec: UpscalerSpec | None, absent: str) -> str:
    """The job-log line of a plan upscaled bicubically, and why no learned upscaler runs."""
    if spec is None:
        why = "this model family upscales in its own pipeline, not in the upscaler stage"
    elif absent:
        why = f"{absent}: run `framecast models pull {UPSCALER_NAME}` for its learned upscale"
    else:
        why = f"the generated clip is smaller than the tiles {spec.name} was trained on"
    return (
        f"upscale: bicubic from {plan.gen_width}x{plan.gen_height} to {plan.width}x{plan.height}, no learned "
        f"upscaler ({why})"
    )
