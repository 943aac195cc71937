"""The creative controls of one engine, assembled from its options: what planning and the engine hook in.

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

from framecast.engine.creative.audio import AudioStage, build_tiny_audio
from framecast.engine.creative.prompting import PromptOptimiser, prompt_llm
from framecast.engine.creative.shots import ShotPlanner
from framecast.engine.creative.styles import StyleLoras, apply_style, without_terms
from framecast.engine.encode import fit_audio
from framecast.engine.options import EngineOptions
from framecast.engine.planning.plan import PlanStage, RenderPlan, merge_negative, with_prompts
from framecast.engine.presets import Preset
from framecast.schema import TextToVideoInput, ThinkingType

__all__ = ["Creative", "joint_soundtrack"]

Log = Callable[[str], Any]


class Creative:
    """The prompt LLM, shot planner, style LoRAs and audio stage of one engine; models load on first use."""

    def __init__(self, options: EngineOptions, preset: Preset, device: str = "cpu") -> None:
        self.preset = preset
        self.device = device
        self.audio_model = options.audio_model
        llm = prompt_llm(options.prompt_llm, options.prompt_llm_url, options.prompt_llm_api_key, device)
        self.optimiser = PromptOptimiser(llm)
        self.shots = ShotPlanner(llm)
        self.style_loras = StyleLoras.from_config(options.style_loras, preset.name)
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
            # Asked for, or a long clip on a model whose way to make one is shots of one subject.
            if not request.generate_multi_clip_switch and plan.temporal != "shots":
                return plan
            if plan.temporal == "shots":
                log(f"longer than the model's {plan.gen_frames} frames: shots of one subject, joined by cuts")
            use_llm = request.thinking_type in (ThinkingType.enabled, ThinkingType.auto)
            shots = self.shots.plan(
                plan.prompt,
                plan.frames,
                plan.fps,
                plan.seed,
                negative_prompt=plan.negative_prompt,
                use_llm=use_llm,
                log=log,
            )
            return dataclasses.replace(plan, shots=tuple(shots))

        return split

    def _style_stage(self, log: Log) -> PlanStage:
        def style(request: TextToVideoInput, plan: RenderPlan) -> RenderPlan:
            if request.style is None:
                return plan
            # The preset's default negative prompt may name looks ("style, paintings"): asked for a style, they
            # would push against it, so they go; the user's own negative terms all stay.
            default = without_terms(self.preset.negative_prompt, self.preset.style_terms)
            if default != self.preset.negative_prompt:
                log(f"style {request.style.value}: the default negative prompt's look terms are dropped")
            base = merge_negative(default, request.negative_prompt)
            prompt, negative = apply_style(plan.prompt, base, request.style)
            shots = []
            for shot in plan.shots:
                shot_prompt, shot_negative = apply_style(shot.prompt, base, request.style)
                shots.append(dataclasses.replace(shot, prompt=shot_prompt, negative_prompt=shot_negative))
            log(f"style {request.style.value}: prompt {prompt!r}; negative prompt {negative!r}")
            return dataclasses.replace(plan, prompt=prompt, negative_prompt=negative, shots=tuple(shots))

        return style


def joint_soundtrack(parts: list[tuple[Any, int | None]], plan: RenderPlan) -> tuple[Any, int]:
    """Each shot's joint audio cut to its shot's length, end to end: one track over the whole video."""
    rate = parts[0][1]
    assert rate is not None, "a joint-audio plan got a clip without audio"
    pieces = [
        fit_audio(waveform, round(shot.frames * rate / plan.fps))
        for (waveform, _), shot in zip(parts, plan.shots, strict=True)
    ]
    return np.concatenate(pieces, axis=1), rate
