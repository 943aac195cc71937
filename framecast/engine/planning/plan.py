"""Planning: a validated request and a preset in, an exact ``RenderPlan`` out. Pure: no torch, no I/O.

Decisions:
- Output size: PixVerse's table, exactly (``OUTPUT_SIZES``).
- Output fps: the preset's native fps (24 for Wan2.2-5B and LTX-2, 16 for Wan2.1 and Wan2.2-A14B), so every
  frame is a frame the model drew; frames = duration x fps exactly.
- Generation size and upscaler (upscale.py): the preset's native pixel count at the output's aspect, or a size
  within a few percent of it that maps to the output by a crop alone (the 5B's 720p: 1280x736); smaller tiers
  are downscaled from it (best quality); an output above it (1080p, and the 1.3B's 540p and 720p) runs the
  learned upscaler stage at the smallest scale that covers it, or bicubic when its weights are missing.
- Generation frames: the smallest count of the preset's rule (``frame_step * k + 1``, or for a chunked model
  whole chunks cut to it: frames.py) that covers the output; the extra frames at the end are dropped. A
  duration longer than the preset's ``max_frames`` is never made shorter; per preset (``Preset.extend``) it is
  either
  "chain": segments of ``max_frames``, each an image-to-video continuation of the previous segment's last
  frame (Wan2.2-TI2V-5B: 8 s and 10 s are two segments), or
  "stretch": one segment of ``max_frames`` spread over the duration (frames blended, motion slowed by
  ``frames / max_frames``: Wan2.1-1.3B and Wan2.2-A14B at 8 s / 10 s, x1.6 / x2.0).
  LTX-2 covers 10 s in one pass; Helios generates 33-frame chunks, each conditioned on the ones before, up
  to a minute.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from framecast.engine.planning.frames import longest_on_rule, on_rule
from framecast.engine.planning.sizes import OUTPUT_SIZES
from framecast.engine.planning.upscale import UpscalerSpec, plan_size
from framecast.engine.presets import Preset, joint_audio_presets
from framecast.errors import InputError
from framecast.schema import SEED_MAX, SEED_MIN, TextToVideoInput


@dataclass(frozen=True)
class Shot:
    """One shot: a stretch of the output with its own prompts and seed. A plain request is one shot; the
    multi-clip planner (creative/shots.py) makes 2-4, and the output lists them (``shots_output``)."""

    prompt: str
    negative_prompt: str
    start: float  # seconds into the output
    duration: float
    seed: int
    frames: int  # output frames of this shot


@dataclass(frozen=True)
class RenderPlan:
    """Everything a render needs to know, decided before any model runs."""

    preset: str
    width: int  # exact output size
    height: int
    fps: int  # output frame rate
    frames: int  # output frame count = duration x fps
    gen_width: int  # the size the model renders at
    gen_height: int
    gen_frames: int  # frames per generation pass; obeys the preset's frame rule
    # "trim": drop the extra tail frames; "stretch": resample gen_frames to frames in time; "chain": several
    # passes, each continuing from the last frame of the one before, then trimmed
    temporal: str
    seed: int
    prompt: str  # final prompt (after style / optimisation)
    negative_prompt: str  # preset default merged with the user's
    shots: tuple[Shot, ...]
    audio: str  # "none" | "joint" (the model renders it) | "separate" (the audio stage adds it)
    steps: int
    guidance_scale: float
    # What brings the generated frames up to the output (upscale.py): "none" (a crop, or a downscale), "bicubic",
    # or the learned upscaler stage's name, run at ``upscale`` (its factor; 1.0 for the others)
    upscaler: str = "none"
    upscale: float = 1.0

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def segments(self) -> int:
        """Generation passes: one, or for "chain" enough that each new pass adds ``gen_frames - 1`` frames."""
        if self.temporal != "chain":
            return 1
        return 1 + math.ceil((self.frames - self.gen_frames) / (self.gen_frames - 1))


# A creative stage (style, prompt optimisation, multi-clip shots: styles.py, prompting.py, shots.py) takes the
# request and the plan so far and returns the plan with its prompts or shots rewritten.
PlanStage = Callable[[TextToVideoInput, RenderPlan], RenderPlan]


def make_plan(
    request: TextToVideoInput,
    preset: Preset,
    *,
    rng_seed: int | None = None,
    stages: Sequence[PlanStage] = (),
    separate_audio: bool = False,
    upscaler: UpscalerSpec | None = None,
) -> RenderPlan:
    """Plan ``request`` on ``preset``. ``rng_seed`` fixes the seed drawn when the request has none (tests);
    ``separate_audio`` says an audio stage will add the track for a preset that renders video only;
    ``upscaler`` is the learned upscaler the engine offers (its weights present or not), ``None`` for none."""
    # 1. Exact output size, frame rate and frame count
    width, height = OUTPUT_SIZES[request.resolution][request.aspect_ratio]
    fps = preset.fps
    frames = request.duration.seconds * fps

    # 2. Generation size and frames
    size = plan_size(preset, width, height, upscaler)
    gen_frames, temporal = generation_frames(preset, frames)

    # 3. Seed, prompts, audio
    seed = request.seed if request.seed is not None else draw_seed(rng_seed)
    negative = merge_negative(preset.negative_prompt, request.negative_prompt)
    audio = audio_mode(request, preset, separate_audio)

    plan = RenderPlan(
        preset=preset.name,
        width=width,
        height=height,
        fps=fps,
        frames=frames,
        gen_width=size.width,
        gen_height=size.height,
        gen_frames=gen_frames,
        temporal=temporal,
        seed=seed,
        prompt=request.prompt,
        negative_prompt=negative,
        shots=(Shot(request.prompt, negative, 0.0, frames / fps, seed, frames),),
        audio=audio,
        steps=preset.steps,
        guidance_scale=preset.guidance_scale,
        upscaler=size.upscaler,
        upscale=size.upscale,
    )

    # 4. Creative stages; until they land, style, thinking_type and multi-clip leave the plan as it is.
    for stage in stages:
        plan = stage(request, plan)
    return plan


def generation_frames(preset: Preset, frames: int) -> tuple[int, str]:
    """Frames to generate per pass for ``frames`` output frames, and how they map (``RenderPlan.temporal``)."""
    needed = on_rule(frames, preset.frame_step, preset.frame_chunk)
    if needed <= preset.max_frames:
        return needed, "trim"
    return longest_on_rule(preset.max_frames, preset.frame_step, preset.frame_chunk), preset.extend


def draw_seed(rng_seed: int | None = None) -> int:
    rng = random.Random(rng_seed) if rng_seed is not None else random.SystemRandom()
    return rng.randint(SEED_MIN, SEED_MAX)


def merge_negative(default: str, user: str) -> str:
    """The user's negative prompt first (it matters most to them), then the preset's default."""
    parts = [part.strip().strip(",").strip() for part in (user, default)]
    return ", ".join(part for part in parts if part)


def audio_mode(request: TextToVideoInput, preset: Preset, separate_audio: bool) -> str:
    if not request.generate_audio_switch:
        return "none"
    if preset.joint_audio:
        return "joint"
    if separate_audio:
        return "separate"
    raise InputError(
        f"generate_audio_switch is not available with model {preset.name}, which renders video only: "
        f"send generate_audio_switch=false, or run a model with joint audio ({joint_audio_presets()})"
    )


def with_prompts(plan: RenderPlan, prompt: str, negative_prompt: str) -> RenderPlan:
    """A plan whose prompts (and its single shot's) are replaced: the helper creative stages use."""
    shots = tuple(replace(s, prompt=prompt, negative_prompt=negative_prompt) for s in plan.shots)
    return replace(plan, prompt=prompt, negative_prompt=negative_prompt, shots=shots)


def shot_plans(plan: RenderPlan, preset: Preset) -> list[RenderPlan]:
    """One plan per shot (the plan itself for a single shot): its prompts, seed and frames, generated by the
    preset's frame rule. Rendered one after the other, their frames join with hard cuts."""
    plans = []
    for shot in plan.shots:
        gen_frames, temporal = generation_frames(preset, shot.frames)
        plans.append(
            replace(
                plan,
                prompt=shot.prompt,
                negative_prompt=shot.negative_prompt,
                seed=shot.seed,
                frames=shot.frames,
                gen_frames=gen_frames,
                temporal=temporal,
                shots=(shot,),
            )
        )
    return plans


def shots_output(plan: RenderPlan) -> list[dict] | None:
    """The output's ``"shots"``: the list for a multi-clip video, else ``None``."""
    if len(plan.shots) < 2:
        return None
    return [
        {"prompt": s.prompt, "start": s.start, "duration": s.duration, "seed": s.seed} for s in plan.shots
    ]
