"""The creative controls of one engine, assembled from settings: what ``plan.py`` and ``pipeline.py`` hook in.

Planning runs three stages after the plan's sizes and seed are fixed, in this order:
1. ``thinking_type``: the prompt optimiser rewrites the prompt (or not) - prompting.py;
2. ``generate_multi_clip_switch``: the shot planner splits the clip into shots - shots.py;
3. ``style``: the style's texts wrap the prompt and every shot's prompt, and extend the negatives - styles.py.
Style comes last so that neither the LLM nor the shot template can drop it. Rendering then swaps in the
style's LoRA (if configured) and, for a preset without joint audio, runs the audio stage - audio.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from framecast.config import Settings
from framecast.engine.audio import AudioStage, build_tiny_audio
from framecast.engine.encode import fit_audio
from framecast.engine.plan import PlanStage, RenderPlan, ShotPlan, generation_frames, with_prompts
from framecast.engine.presets import Preset
from framecast.engine.prompting import PromptOptimiser, prompt_llm
from framecast.engine.shots import ShotPlanner
from framecast.engine.styles import StyleLoras, apply_style
from framecast.schema import TextToVideoInput, ThinkingType

__all__ = ["Creative", "joint_soundtrack", "shot_plans", "shots_output"]

Log = Callable[[str], Any]


class Creative:
    """The prompt LLM, shot planner, style LoRAs and audio stage of one engine; models load on first use."""

    def __init__(self, settings: Settings, preset: Preset, device: str = "cpu") -> None:
        self.preset = preset
        self.device = device
        self.audio_model = settings.audio_model
        llm = prompt_llm(settings.prompt_llm, settings.prompt_llm_url, settings.prompt_llm_api_key, device)
        self.optimiser = PromptOptimiser(llm)
        self.shots = ShotPlanner(llm)
        self.style_loras = StyleLoras.from_config(settings.style_loras, preset.name)
        self._audio: AudioStage | None = None

    def stages(self, log: Log) -> list[PlanStage]:
        """The planning stages, in order, logging to ``log``; the last one logs the final prompts."""

        def final(request: TextToVideoInput, plan: RenderPlan) -> RenderPlan:
            log(f"final prompt: {plan.prompt!r}; negative prompt: {plan.negative_prompt!r}")
            return plan

        return [self._optimise_stage(log), self._shots_stage(log), self._style_stage(log), final]

    def audio(self) -> AudioStage:
        """The audio stage: a tiny stand-in for tiny presets, else ``audio_model``."""
        if self._audio is None:
            if self.preset.tiny:
                self._audio = AudioStage(build_tiny_audio(), device=self.device, steps=2)
            else:
                self._audio = AudioStage.load(self.audio_model, device=self.device)
        return self._audio

    def soundtrack(
        self, plan: RenderPlan, log: Log, should_stop: Callable[[], str | None]
    ) -> tuple[Any, int]:
        """The audio stage's waveform for ``plan`` (``plan.audio == "separate"``) and its sample rate."""
        return self.audio().generate(
            plan.prompt, plan.frames, plan.fps, plan.seed, log=log, should_stop=should_stop
        )

    def _optimise_stage(self, log: Log) -> PlanStage:
        def optimise(request: TextToVideoInput, plan: RenderPlan) -> RenderPlan:
            prompt = self.optimiser.optimise(plan.prompt, request.thinking_type, log)
            return with_prompts(plan, prompt, plan.negative_prompt)

        return optimise

    def _shots_stage(self, log: Log) -> PlanStage:
        def split(request: TextToVideoInput, plan: RenderPlan) -> RenderPlan:
            if not request.generate_multi_clip_switch:
                return plan
            use_llm = request.thinking_type in (ThinkingType.enabled, ThinkingType.auto)
            shots = self.shots.plan(plan.prompt, plan.frames, plan.fps, plan.seed, use_llm=use_llm, log=log)
            negative = plan.negative_prompt
            return dataclasses.replace(
                plan,
                shots=tuple(
                    ShotPlan(
                        prompt=s.prompt,
                        negative_prompt=negative,
                        start=s.start,
                        duration=s.duration,
                        seed=s.seed,
                        frames=s.frames,
                    )
                    for s in shots
                ),
            )

        return split

    def _style_stage(self, log: Log) -> PlanStage:
        def style(request: TextToVideoInput, plan: RenderPlan) -> RenderPlan:
            if request.style is None:
                return plan
            prompt, negative = apply_style(plan.prompt, plan.negative_prompt, request.style)
            shots = []
            for shot in plan.shots:
                shot_prompt, shot_negative = apply_style(shot.prompt, shot.negative_prompt, request.style)
                shots.append(dataclasses.replace(shot, prompt=shot_prompt, negative_prompt=shot_negative))
            log(f"style {request.style.value}: prompt {prompt!r}; negative prompt {negative!r}")
            return dataclasses.replace(plan, prompt=prompt, negative_prompt=negative, shots=tuple(shots))

        return style


def shot_plans(plan: RenderPlan, preset: Preset) -> list[RenderPlan]:
    """One plan per shot (the plan itself for a single shot): its prompts, seed and frames, generated by the
    preset's frame rule. Rendered one after the other, their frames join with hard cuts."""
    plans = []
    for shot in plan.shots:
        gen_frames, temporal = generation_frames(preset, shot.frames)
        plans.append(
            dataclasses.replace(
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


def joint_soundtrack(parts: list[tuple[Any, int | None]], plan: RenderPlan) -> tuple[Any, int]:
    """Each shot's joint audio cut to its shot's length, end to end: one track over the whole video."""
    rate = parts[0][1]
    assert rate is not None, "a joint-audio plan got a clip without audio"
    pieces = [
        fit_audio(waveform, round(shot.frames * rate / plan.fps))
        for (waveform, _), shot in zip(parts, plan.shots, strict=True)
    ]
    return np.concatenate(pieces, axis=1), rate


def shots_output(plan: RenderPlan) -> list[dict] | None:
    """The output's ``"shots"``: the list for a multi-clip video, else ``None``."""
    if len(plan.shots) < 2:
        return None
    return [
        {"prompt": s.prompt, "start": s.start, "duration": s.duration, "seed": s.seed} for s in plan.shots
    ]
