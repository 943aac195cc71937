"""What ``framecast models list|pull|verify`` and ``framecast generate`` do; cli.py only parses and prints."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from framecast.engine import weights
from framecast.engine.base import Engine, RenderResult
from framecast.engine.options import EngineOptions
from framecast.engine.presets import VARIANTS, all_presets, get_preset
from framecast.engine.stages import TINY_UPSCALER, UPSCALER_LICENCE, UPSCALER_NAME
from framecast.errors import ModelUnavailableError
from framecast.schema import TextToVideoInput


def models_list(options: EngineOptions) -> str:
    """A table of the presets: name, download size, licence, whether the weights are on this machine, and
    under each variant what it trades for its speed."""
    rows = [("NAME", "SIZE", "WEIGHTS", "LICENCE")]
    for preset in all_presets():
        if preset.tiny:
            size, present = "-", "built in (random weights, test only)"
        else:
            size = f"{preset.size_gb:.0f} GB"
            folder = weights.cached_folder(preset)
            present = "present" if folder is not None and not weights.problems(folder, preset) else "missing"
            if options.model_path and options.model == preset.name:
                present = f"FRAMECAST_MODEL_PATH={options.model_path}"
        rows.append((preset.name, size, present, preset.licence))
    for extra, (source, _) in auxiliary_models(options).items():
        rows.append((extra, "-", _auxiliary_weights(source), f"auxiliary: {source}"))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    # A variant's trade-off goes on the line under it: it is the one thing to know before choosing it.
    tradeoffs = {preset.name: preset.tradeoff for preset in all_presets() if preset.tradeoff}
    return "\n".join(
        line + (f"\n    trade-off: {tradeoffs[row[0]]}" if row[0] in tradeoffs else "")
        for line, row in zip(lines, rows, strict=True)
    )


def auxiliary_models(options: EngineOptions) -> dict[str, tuple[str, str]]:
    """Models the creative controls use beside the video model: name -> (repo id or folder, what it does)."""
    return {
        "stable-audio-open": (
            options.audio_model,
            "audio stage of generate_audio_switch for video-only presets; Stability AI Community Licence "
            "(accept it on the Hub first: the repository is gated)",
        ),
        "prompt-llm": (options.prompt_llm, "thinking_type prompt optimisation and multi-clip shot prompts"),
        UPSCALER_NAME: (
            options.upscaler_model,
            f"upscaler stage for outputs above a preset's native size (1080p); {UPSCALER_LICENCE} licence; "
            "without it those outputs are upscaled bicubically",
        ),
    }


def _auxiliary_weights(source: str) -> str:
    """Whether an auxiliary model's weights are here; a diffusers pipeline folder is checked for completeness."""
    if source == TINY_UPSCALER:
        return "built in (random weights, test only)"
    folder = Path(source) if Path(source).is_dir() else weights.cached_repo(source)
    if folder is None:
        return "missing"
    if (folder / "model_index.json").is_file() and weights.problems(folder):
        return "incomplete"
    return "local folder" if Path(source).is_dir() else "present"


def models_pull(options: EngineOptions, name: str) -> Path:
    """Download a preset's weights (and a variant's LoRAs), or an auxiliary model, into the Hugging Face cache
    (``HF_HOME``), with progress bars."""
    extra = auxiliary_models(options).get(name)
    if extra is not None:
        return weights.pull_repo(extra[0], f"the {name} model")
    preset = get_preset(name)
    folder = weights.pull(preset)
    if preset.variant:
        variant = VARIANTS[preset.variant]
        if variant.lora_repo:
            weights.pull_repo(variant.lora_repo, f"model {name}", list(variant.lora_files))
    return folder


def models_verify(options: EngineOptions, name: str) -> str:
    """One line saying the preset's weights are complete; ``ModelUnavailableError`` naming what is missing.

    When ``name`` is the configured model and ``FRAMECAST_MODEL_PATH`` is set, that folder is checked.
    """
    preset = get_preset(name)
    if options.model_path and options.model == name:
        folder: Path | None = weights.weights_folder(preset, options.model_path)
    elif preset.tiny:
        return f"{name}: built in code, nothing to verify"
    else:
        folder = weights.cached_folder(preset)
    if folder is None:
        raise ModelUnavailableError(weights.missing_sentence(preset))
    missing = weights.problems(folder, preset)
    if missing:
        raise ModelUnavailableError(
            f"The weights of model {name} in {folder} are incomplete (missing {', '.join(missing[:5])}): "
            f"run `framecast models pull {name}` again."
        )
    return f"{name}: complete in {folder}"


class ProgressContext:
    """A ``RenderContext`` for the terminal: a tqdm bar over the denoising steps, log lines above it."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None
        self.started = time.monotonic()

    def log(self, message: str, level: str = "INFO") -> None:
        if not message.startswith("step "):
            tqdm.write(message)

    def progress(self, step: int, total: int) -> None:
        if self.bar is None or self.bar.total != total:
            self.close()
            self.bar = tqdm(total=total, unit="step", desc="denoising")
        self.bar.update(step - self.bar.n)
        if step >= total:  # the bar times the denoising; decoding and encoding log their own lines
            self.close()

    def should_stop(self) -> str | None:
        return None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def plan(engine: Engine, request: TextToVideoInput) -> dict:
    """What ``engine`` would render for ``request`` (``planning.summary``), without loading its model; the
    creative stages' log lines go to the terminal's standard error."""
    from framecast.engine.planning import summary

    plan_of = getattr(engine, "plan", None)
    if plan_of is None:
        raise ModelUnavailableError(f"the {engine.name} engine does not plan: it renders without a model")
    return summary(plan_of(request, lambda line: print(line, file=sys.stderr)), engine.preset)  # type: ignore[attr-defined]


def generate(engine: Engine, request: TextToVideoInput, out: Path) -> RenderResult:
    """Render ``request`` to ``out`` with ``engine``, showing progress on the terminal."""
    engine.load()
    ctx = ProgressContext()
    try:
        return engine.render(request, ctx, Path(out))
    finally:
        ctx.close()
