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
  duration longer than the preset's ``max_frames`` is never made shorter, and never slowed down unless asked:
  per preset (``Preset.extend``, a method its family supports) it is
  "window": the whole length generated at once, denoised as overlapping windows of ``max_frames`` whose
  predictions are blended in latent space at every step (``windows``), so every frame has real motion and the
  windows agree where they overlap;
  "chain": segments of ``max_frames``, each an image-to-video continuation of the previous segment's last
  frame, its colours matched to that frame; or
  "shots": the multi-clip shot planner's shots of one subject, each within ``max_frames``, joined by cuts.
  "stretch" (one segment spread over the duration, frames blended, motion slowed) runs only when the operator
  asks for it, for speed (``FRAMECAST_LONG_CLIPS=stretch``). LTX-2 covers 10 s in one pass; Helios generates
  33-frame chunks, each conditioned on the ones before, up to a minute.
- Two-stage presets (``Preset.two_stage``: LTX-2's authors' pipeline) generate at the same size, in two
  stages: the first at half of it (so their size multiple is twice the VAE's), a learned x2 latent upsample,
  then ``refine_steps`` more steps at the full size.
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
    # "trim": drop the extra tail frames; "window": gen_frames generated at once as overlapping windows of
    # window_frames, blended in latent space, then trimmed; "chain": several passes of gen_frames, each
    # continuing from the last frame of the one before, then trimmed; "stretch" (opt-in, for speed): resample
    # gen_frames to frames in time
    temporal: str
    seed: int
    prompt: str  # final prompt (after style / optimisation)
    negative_prompt: str  # preset default merged with the user's
    shots: tuple[Shot, ...]
    audio: str  # "none" | "joint" (the model renders it) | "separate" (the audio stage adds it)
    steps: int  # denoising steps of the (first) pass
    guidance_scale: float
    # What brings the generated frames up to the output (upscale.py): "none" (a crop, or a downscale), "bicubic",
    # or the learned upscaler stage's name, run at ``upscale`` (its factor; 1.0 for the others)
    upscaler: str = "none"
    upscale: float = 1.0
    window_frames: int = 0  # "window": frames per window (the model's longest clip); else 0
    frame_step: int = 4  # the model's frame rule (gen_frames = frame_step * k + 1)
    # A two-stage preset's refining steps at the generation size, after its first pass at half that size and a
    # learned x2 latent upsample (``Preset.two_stage``); 0: one pass.
    refine_steps: int = 0

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    @property
    def segments(self) -> int:
        """Generation passes: one, or for "chain" enough that each new pass adds ``gen_frames - 1`` frames."""
        if self.temporal != "chain":
            return 1
        return 1 + math.ceil((self.frames - self.gen_frames) / (self.gen_frames - 1))

    @property
    def windows(self) -> tuple[int, ...]:
        """For "window": the first frame of each window, spread evenly over ``gen_frames``, on the frame rule,
        each overlapping its neighbour by at least a quarter of a window (``window_starts``)."""
        if self.temporal != "window":
            return ()
        return window_starts(self.gen_frames, self.window_frames, self.frame_step)

    def joins(self) -> list[dict]:
        """Where the generated parts of the clip meet, in output frames: what ``framecast plan`` shows. A chained
        segment starts from the last frame of the one before (generated again, and dropped): its first new frame
        is the one after it."""
        if self.temporal == "chain":
            step = self.gen_frames - 1
            return [
                {"frame": i * step + 1, "how": "continues from the frame before"}
                for i in range(1, self.segments)
            ]
        if self.temporal == "window":
            starts = self.windows
            return [
                {"frames": [start, end], "how": "windows blended in latent space"}
                for start, end in zip(starts[1:], (s + self.window_frames - 1 for s in starts), strict=False)
            ]
        return []


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
    stretch: bool = False,
    upscaler: UpscalerSpec | None = None,
) -> RenderPlan:
    """Plan ``request`` on ``preset``. ``rng_seed`` fixes the seed drawn when the request has none (tests);
    ``separate_audio`` says an audio stage will add the track for a preset that renders video only; ``stretch``
    is the operator's opt-in to slow long clips down instead of generating them in full (for speed);
    ``upscaler`` is the learned upscaler the engine offers (its weights present or not), ``None`` for none."""
    # 1. Exact output size, frame rate and frame count
    width, height = OUTPUT_SIZES[request.resolution][request.aspect_ratio]
    fps = preset.fps
    frames = request.duration.seconds * fps

    # 2. Generation size and frames
    size = plan_size(preset, width, height, upscaler)
    gen_frames, temporal, window = _temporal(preset, frames, stretch)

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
        window_frames=window,
        frame_step=preset.frame_step,
        refine_steps=preset.two_stage.steps if preset.two_stage else 0,
    )

    # 4. Creative stages; until they land, style, thinking_type and multi-clip leave the plan as it is.
    for stage in stages:
        plan = stage(request, plan)
    return plan


def generation_frames(preset: Preset, frames: int, *, stretch: bool = False) -> tuple[int, str]:
    """Frames to generate per pass for ``frames`` output frames, and how they map (``RenderPlan.temporal``):
    "window" generates them all at once; "chain", "shots" and "stretch" one clip of the model's longest."""
    needed = on_rule(frames, preset.frame_step, preset.frame_chunk)
    if needed <= preset.max_frames:
        return needed, "trim"
    method = "stretch" if stretch else preset.extend
    if method == "window":
        return needed, "window"
    return longest_on_rule(preset.max_frames, preset.frame_step, preset.frame_chunk), method


def _temporal(preset: Preset, frames: int, stretch: bool) -> tuple[int, str, int]:
    gen_frames, temporal = generation_frames(preset, frames, stretch=stretch)
    window = (
        longest_on_rule(preset.max_frames, preset.frame_step, preset.frame_chunk)
        if temporal == "window"
        else 0
    )
    return gen_frames, temporal, window


MIN_OVERLAP = 0.25  # of a window: enough shared frames for neighbouring windows to agree on the motion


def window_starts(frames: int, window: int, step: int) -> tuple[int, ...]:
    """First frames of the fewest windows of ``window`` frames that cover ``frames`` with neighbours sharing at
    least ``MIN_OVERLAP`` of a window, spread evenly, each on the frame rule (a multiple of ``step``)."""
    if frames <= window:
        return (0,)
    span, overlap = frames - window, math.ceil(MIN_OVERLAP * (window - 1))
    count = 1 + math.ceil(span / (window - 1 - overlap))
    return tuple(round(i * span / (count - 1) / step) * step for i in range(count))


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
        gen_frames, temporal, window = _temporal(preset, shot.frames, plan.temporal == "stretch")
        plans.append(
            replace(
                plan,
                prompt=shot.prompt,
                negative_prompt=shot.negative_prompt,
                seed=shot.seed,
                frames=shot.frames,
                gen_frames=gen_frames,
                temporal=temporal,
                window_frames=window,
                shots=(shot,),
            )
        )
    return plans


def summary(plan: RenderPlan, preset: Preset) -> dict:
    """What a render of ``plan`` will do, as plain data: ``framecast plan`` prints it, the job log records it."""
    return {
        "model": preset.name,
        "family": preset.family,
        "output": {"width": plan.width, "height": plan.height, "frames": plan.frames, "fps": plan.fps},
        "generation": {
            "width": plan.gen_width,
            "height": plan.gen_height,
            "frames": plan.gen_frames,
            "long_clip": plan.temporal,
            "segments": plan.segments,
            "windows": list(plan.windows),
            "window_frames": plan.window_frames,
            "joins": plan.joins(),
            "upscaler": plan.upscaler,
            "upscale": plan.upscale,
        },
        "steps": plan.steps,
        "guidance_scale": plan.guidance_scale,
        "guidance_scale_2": preset.guidance_scale_2,
        "flow_shift": preset.flow_shift,
        "seed": plan.seed,
        "audio": plan.audio,
        "prompt": plan.prompt,
        "negative_prompt": plan.negative_prompt,
        "shots": [
            {"prompt": s.prompt, "start": s.start, "duration": s.duration, "seed": s.seed, "frames": s.frames}
            for s in plan.shots
        ],
    }


def shots_output(plan: RenderPlan) -> list[dict] | None:
    """The output's ``"shots"``: the list for a multi-clip video, else ``None``."""
    if len(plan.shots) < 2:
        return None
    return [
        {"prompt": s.prompt, "start": s.start, "duration": s.duration, "seed": s.seed} for s in plan.shots
    ]
