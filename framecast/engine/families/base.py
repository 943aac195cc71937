"""The Family interface: everything that differs between model lines, behind one class per line.

A family knows how its pipeline is built from a folder (or at tiny size, offline), how it denoises and decodes
one clip, how it continues a clip from a frame (for chained long clips), its joint audio if any, and which speed
levers apply to it. The engine (engine.py) speaks only to this interface.

``Family`` implements the common case once: a diffusers pipeline loaded with ``from_pretrained`` and called the
way its authors' docs show (``generate``). A family overrides what its line does differently.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from framecast.engine.base import RenderContext
from framecast.engine.parallel.rule import Layout, ParallelSupport
from framecast.engine.planning.plan import RenderPlan
from framecast.engine.presets import Preset, Variant
from framecast.engine.speed import Modules
from framecast.errors import ConfigError, RenderStopped

__all__ = [
    "Family",
    "GeneratedClip",
    "Steps",
    "interrupt_after_one_step",
    "seeded_generator",
    "stop_if_asked",
    "to_pil",
]


@dataclass
class GeneratedClip:
    """What a family made of one plan, before the output mapping and encoding."""

    video: torch.Tensor  # (frames, 3, height, width) in [0, 1], at the generation size
    audio: np.ndarray | None = None  # (channels, samples) in [-1, 1]
    sample_rate: int | None = None


def stop_if_asked(ctx: RenderContext) -> None:
    reason = ctx.should_stop()
    if reason:
        raise RenderStopped(reason)


class Steps:
    """Reports denoising steps ``done + 1`` ... of ``total`` to the render context; stops the render when it
    asks to, from inside the step (raising leaves the loop now, not after the remaining steps)."""

    def __init__(self, ctx: RenderContext, done: int, total: int) -> None:
        self.ctx, self.done, self.total = ctx, done, total

    def __call__(self, index: int) -> None:
        """Step ``index`` (0-based, of this pass) is done."""
        step = self.done + index + 1
        self.ctx.log(f"step {step}/{self.total}")
        self.ctx.progress(step, self.total)
        stop_if_asked(self.ctx)

    def then(self, steps: int) -> Steps:
        """The reporter of the pass that follows one of ``steps`` steps."""
        return Steps(self.ctx, self.done + steps, self.total)

    def callback_on_step_end(self) -> Callable[..., dict[str, Any]]:
        """A diffusers ``callback_on_step_end`` that reports each step. It counts its calls rather than trusting
        the pipeline's step index, which starts again at 0 in a pipeline with several loops (one per chunk of
        an autoregressive model, one per stage of a pyramid)."""
        calls = itertools.count()

        def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            self(next(calls))
            return tensors

        return on_step_end


def seeded_generator(seed: int) -> torch.Generator:
    # On the CPU whatever the device, so a seed gives the same noise on every machine.
    return torch.Generator("cpu").manual_seed(seed % 2**32)


def random_lora_layers(transformer: Any, seed: int, rank: int = 4) -> dict[str, torch.Tensor]:
    """A random rank-``rank`` LoRA on the attention projections (to_q, to_k, to_v) of a model shaped like
    ``transformer``, drawn from ``seed`` without touching the global generator: the state dict a family's
    ``save_lora_weights`` takes (tiny twins' stand-ins for a variant's LoRA files)."""
    from peft import LoraConfig, get_peft_model_state_dict

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        source = type(transformer).from_config(transformer.config)
        config = LoraConfig(
            r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v"], init_lora_weights=False
        )
        source.add_adapter(config)
    return get_peft_model_state_dict(source)


def to_pil(frame: torch.Tensor) -> Any:
    """One (3, h, w) frame in [0, 1] as an RGB PIL image, rounded as an 8-bit video frame would be."""
    from PIL import Image

    array = (frame.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


class Family:
    """One model line. Subclasses set the class attributes and override what differs; one instance serves one
    loaded preset (it holds the pipeline and any per-model caches)."""

    name: ClassVar[str]
    # Words that name this line in code (identifiers, strings): outside families/ and the presets' data, no
    # engine module may use them (tests/engine/test_families.py).
    keywords: ClassVar[tuple[str, ...]]
    # Names in speed.LEVERS that apply to this line, each tested on its tiny model.
    levers: ClassVar[frozenset[str]] = frozenset()
    # Whether it continues a clip from a frame (``Preset.extend == "chain"``: ``continue_clip``).
    continues: ClassVar[bool] = False
    # Whether its own pipeline upscales above the native size (a latent upsampler and refine), so that the
    # engine offers planning no upscaler stage (stages/upscale.py) for it.
    upscales_itself: ClassVar[bool] = False
    # Whether its denoising loop blends overlapping windows of a longer clip (``Preset.extend == "window"``:
    # ``generate`` honours ``plan.windows``).
    windows: ClassVar[bool] = False
    # The attribute of each expert holding its repeated transformer blocks.
    blocks: ClassVar[str] = "transformer_blocks"
    # Attribute names of the denoisers on the pipeline, in the order the pipeline uses them.
    expert_names: ClassVar[tuple[str, ...]] = ("transformer",)
    # Whether the denoisers' attention always takes a padding mask (``Modules.masked_attention``).
    masked_attention: ClassVar[bool] = False
    # What one request's render can split across a group's ranks (engine/parallel/rule.py); none by default:
    # the group's rank 0 renders alone.
    parallel: ClassVar[ParallelSupport] = ParallelSupport()

    def __init__(self, preset: Preset, variant: Variant | None = None) -> None:
        self.preset = preset
        self.variant = variant
        self.pipe: Any = None
        self.cfg_split: Any = None  # CFG-parallel: this rank's guidance pass (parallel.group.CfgSplit)
        self.layout = Layout()

    # 1. Building
    def load(self, folder: Path | None, dtype: torch.dtype) -> None:
        """Build the pipeline from ``folder`` (a diffusers pipeline folder), or at tiny size when ``None``."""
        parts = self.replaced_components()
        if folder is None:
            pipe = self.tiny()
            for name, component in parts.items():
                setattr(pipe, name, component)
        else:
            pipe = self.from_folder(folder, dtype, parts)
        if "scheduler" not in parts:
            pipe.scheduler = self._shifted(pipe.scheduler)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe

    def from_folder(self, folder: Path, dtype: torch.dtype, parts: dict[str, Any]) -> Any:
        """``from_pretrained`` of the preset's pipeline class; ``parts`` are built in code, so the folder's
        own versions of them are never loaded, and the components of ``Preset.component_folders`` come from
        the folders it names."""
        import diffusers

        parts = {**self._from_component_folders(folder, dtype), **parts}
        pipeline_class = getattr(diffusers, self.preset.pipeline_class)
        return pipeline_class.from_pretrained(
            folder, dtype=self.dtypes(dtype), local_files_only=True, **parts
        )

    def _from_component_folders(self, folder: Path, dtype: torch.dtype) -> dict[str, Any]:
        import diffusers

        index = json.loads((folder / "model_index.json").read_text())
        parts = {}
        for name, subfolder in self.preset.component_folders.items():
            _, class_name = index[name]  # the class the pipeline expects there: ["diffusers", "<class>"]
            parts[name] = getattr(diffusers, class_name).from_pretrained(
                folder, subfolder=subfolder, dtype=dtype, local_files_only=True
            )
        return parts

    def dtypes(self, dtype: torch.dtype) -> Any:
        """``from_pretrained``'s ``dtype``: one for every component, or a mapping per component."""
        return dtype

    def replaced_components(self) -> dict[str, Any]:
        """Components built in code instead of from the folder (e.g. a variant's sampler)."""
        return {}

    def tiny(self) -> Any:
        """The pipeline at tiny size with random weights, built offline (tests, CI, CPU smoke runs)."""
        raise NotImplementedError(f"{self.name} has no tiny model")

    def save(self, folder: Path) -> None:
        """Write the loaded model as a weights folder laid out as its published repo is (``save_tiny``): a
        stand-in for downloaded weights, loaded back through ``load`` as real ones are."""
        self.pipe.save_pretrained(folder)
        for name, subfolder in self.preset.component_folders.items():
            getattr(self.pipe, name).save_pretrained(Path(folder) / subfolder)

    def tiny_loras(self, count: int) -> tuple[str, tuple[str, ...]]:
        """A folder of ``count`` random LoRA files for the tiny model's experts, one each (a tiny twin of a
        LoRA variant, whose real files cannot be built), as ``(folder, file names)``."""
        raise NotImplementedError(f"{self.name} has no tiny LoRAs")

    def _shifted(self, scheduler: Any) -> Any:
        # The preset's flow shift (its authors' value, which can differ from the hub config's).
        shift = self.preset.flow_shift
        if shift is None:
            return scheduler
        for key in ("flow_shift", "shift"):
            if key in scheduler.config:
                return type(scheduler).from_config(scheduler.config, **{key: shift})
        raise ConfigError(f"{self.preset.name}: its scheduler {type(scheduler).__name__} takes no flow shift")

    # 2. What speed levers and LoRAs see
    @property
    def experts(self) -> list[Any]:
        return [e for e in (getattr(self.pipe, n, None) for n in self.expert_names) if e is not None]

    def modules(self) -> Modules:
        config = self.experts[0].config
        return Modules(
            pipe=self.pipe,
            experts=self.experts,
            vae=getattr(self.pipe, "vae", None),
            blocks=self.blocks,
            heads=int(config.num_attention_heads),
            head_dim=int(config.attention_head_dim),
            load_lora=self.load_lora_file,
            masked_attention=self.masked_attention,
        )

    def load_lora_file(self, source: str, weight_name: str | None, adapter_name: str, expert: int) -> None:
        if expert != 0:
            raise ValueError(f"{self.name} has one expert; no LoRA for expert {expert}")
        self.pipe.load_lora_weights(source, weight_name=weight_name, adapter_name=adapter_name)

    def load_lora(self, source: str, adapter_name: str) -> None:
        """A (style) LoRA into every expert (``creative.styles.LoraHost``)."""
        for expert in range(len(self.experts)):
            self.load_lora_file(source, None, adapter_name, expert)

    def unload_loras(self) -> None:
        self.pipe.unload_lora_weights()

    def set_adapters(self, names: list[str], scales: list[float]) -> None:
        self.pipe.set_adapters(names, scales)

    # 3. Several ranks (``parallel``)
    def tokens(self, plan: RenderPlan) -> int:
        """The sequence one denoiser call attends over for ``plan`` (what context parallelism splits)."""
        raise NotImplementedError(f"{self.name} declares no context parallelism")

    def parallelize(self, layout: Layout, group: Any) -> None:
        """Run the next render in ``layout`` on ``group`` (a ``parallel.group.RankGroup``): Ulysses / ring
        attention on every denoiser through diffusers, and this rank's CFG pass. Every rank calls it, in step."""
        from framecast.engine.parallel import context

        if layout == self.layout:
            return
        split = layout.ulysses * layout.ring
        for expert in self.experts:
            context.disable(expert)
            if split > 1:
                context.enable(expert, layout.ulysses, layout.ring, group.mesh(layout)["ring", "ulysses"])
        self.cfg_split = group.cfg_split(layout) if layout.ranks > 1 else None
        self.layout = layout

    # 4. Rendering
    def denoising_steps(self, plan: RenderPlan) -> int:
        """Denoising steps in one segment of ``plan``: what progress counts to (a chunked model runs its steps
        once per chunk; a two-stage plan's refine is included)."""
        return plan.steps + plan.refine_steps

    def call_kwargs(self, plan: RenderPlan, steps: Steps | None, segment: int = 0) -> dict[str, Any]:
        """The pipeline's arguments for ``plan``, as its authors' docs call it; ``segment`` seeds a chained
        segment."""
        kwargs: dict[str, Any] = dict(
            prompt=plan.prompt,
            negative_prompt=plan.negative_prompt,
            height=plan.gen_height,
            width=plan.gen_width,
            num_frames=plan.gen_frames,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            generator=seeded_generator(plan.seed + segment),
            output_type="pt",
            **self.preset.call_kwargs,
        )
        if steps is not None:
            kwargs["callback_on_step_end"] = steps.callback_on_step_end()
        return kwargs

    def generate(self, plan: RenderPlan, steps: Steps) -> GeneratedClip:
        """The first (or only) segment of ``plan``: its frames, and its joint audio when the plan has it."""
        return GeneratedClip(self.pipe(**self.call_kwargs(plan, steps)).frames[0])

    def continue_clip(
        self, frame: torch.Tensor, plan: RenderPlan, segment: int, steps: Steps
    ) -> torch.Tensor:
        """Segment ``segment`` of a chained plan: frames whose first one is ``frame``."""
        raise NotImplementedError(f"{self.name} cannot continue a clip from a frame")

    def warm_up_step(self, plan: RenderPlan, continuation: bool) -> None:
        """One denoising step at ``plan``'s shape through every expert (and the continuation), for compile:
        here, the pipeline called as for a render and interrupted after its first step."""
        self.pipe(**{**self.call_kwargs(plan, None), **interrupt_after_one_step()})


def interrupt_after_one_step() -> dict[str, Any]:
    """Pipeline arguments that stop a diffusers pipeline after one denoising step, returning latents."""

    def stop(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        pipe._interrupt = True
        return tensors

    return {"callback_on_step_end": stop, "output_type": "latent"}
