"""The ``style`` input: per-style prompt and negative-prompt text, and optional per-style LoRAs.

A style keeps the user's subject and action and changes only the look. The texts live in ``STYLE_TEXTS``
below (the one place to edit them); ``apply_style`` wraps the prompt as ``"<lead> <prompt>. <look>"`` and
appends the style's terms to the negative prompt. They are written the way video-model captions are: the
medium first, then rendering, colour and how things move.

``FRAMECAST_STYLE_LORAS`` optionally adds a LoRA per style (and per preset): ``style=source`` or
``preset:style=source``, comma-separated, where ``source`` is a local ``.safetensors`` file, a folder or a hub
repo id. ``StyleLoras.activate`` swaps them on a loaded model through its family's LoRA methods (``LoraHost``:
diffusers' LoRA API, into every expert of the model), never reloading the model.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Protocol

from framecast.engine.creative.text import as_sentence
from framecast.errors import ConfigError
from framecast.schema import Style

__all__ = [
    "STYLE_TEXTS",
    "LoraHost",
    "StyleLoras",
    "StyleText",
    "apply_style",
    "parse_style_loras",
    "without_terms",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StyleText:
    lead: str  # names the medium before the subject, where video models weigh it most
    look: str  # rendering, colour and motion qualities, after the subject
    negative: str  # the looks this style must not drift into


STYLE_TEXTS: dict[Style, StyleText] = {
    Style.anime: StyleText(
        lead="Anime style animation:",
        look="Japanese 2D cel-shaded anime, clean ink line art, flat vibrant colours with soft gradients, "
        "expressive faces, painted backgrounds, smooth hand-drawn motion.",
        negative="photorealistic, live action, photograph, 3D render, CGI, realistic skin texture",
    ),
    Style.animation_3d: StyleText(
        lead="3D animated film style:",
        look="stylised feature-animation CGI, soft global illumination, subsurface-scattered skin, rounded "
        "appealing proportions, rich saturated colours, smooth cinematic character animation.",
        negative="photorealistic, live action, 2D, flat shading, sketch, anime, low-poly, film grain",
    ),
    Style.clay: StyleText(
        lead="Claymation style:",
        look="stop-motion clay animation, handmade plasticine figures with visible fingerprints and "
        "sculpting marks, miniature practical sets, soft studio lighting, "
        "slightly stepped stop-motion movement.",
        negative="photorealistic, live action, glossy CGI, smooth plastic, 2D, anime, line art",
    ),
    Style.comic: StyleText(
        lead="Comic book style animation:",
        look="bold black ink outlines, halftone dot shading, flat saturated colours, graphic high-contrast "
        "shadows, dramatic panel-like framing, crisp animated motion.",
        negative="photorealistic, live action, photograph, soft focus, 3D render, blurry, muted colours",
    ),
    Style.cyberpunk: StyleText(
        lead="Cyberpunk aesthetic:",
        look="neon magenta and cyan lighting, glowing holographic accents, rain-slick reflective surfaces, "
        "atmospheric haze with volumetric light beams, high-contrast night colour grade, "
        "futuristic tech details.",
        negative="daylight, pastel colours, rustic, washed out, flat lighting, cartoon",
    ),
}


def apply_style(prompt: str, negative: str, style: Style | None) -> tuple[str, str]:
    """Return ``(prompt, negative)`` with ``style``'s texts added; unchanged when ``style`` is ``None``. (The
    preset's look terms that a style would fight are dropped from its default negative prompt by the style stage
    before: ``without_terms``.)"""
    if style is None:
        return prompt, negative
    text = STYLE_TEXTS[style]
    return f"{text.lead} {as_sentence(prompt)} {text.look}", _merge_terms(negative, text.negative)


def without_terms(negative: str, terms: tuple[str, ...]) -> str:
    """``negative`` without the comma-separated terms in ``terms`` (case-insensitive)."""
    drop = {term.lower() for term in terms}
    return ", ".join(t.strip() for t in negative.split(",") if t.strip() and t.strip().lower() not in drop)


def _merge_terms(negative: str, extra: str) -> str:
    """Append ``extra``'s comma-separated terms to ``negative``, skipping any the user already wrote."""
    present = {term.strip().lower() for term in negative.split(",")}
    added = [term.strip() for term in extra.split(",") if term.strip().lower() not in present]
    return ", ".join(part for part in [negative.strip().rstrip(","), *added] if part)


def parse_style_loras(text: str) -> dict[tuple[str | None, Style], str]:
    """Read ``FRAMECAST_STYLE_LORAS`` into ``{(preset or None, style): source}``."""
    loras: dict[tuple[str | None, Style], str] = {}
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, source = item.partition("=")
        preset, _, style_name = key.strip().rpartition(":")
        if not sep or not source.strip() or not style_name:
            raise ConfigError(
                f"FRAMECAST_STYLE_LORAS entry {item!r} is not of the form [preset:]style=source"
            )
        try:
            style = Style(style_name.strip())
        except ValueError:
            names = ", ".join(s.value for s in Style)
            raise ConfigError(
                f"FRAMECAST_STYLE_LORAS names unknown style {style_name!r} (one of {names})"
            ) from None
        loras[(preset.strip() or None, style)] = source.strip()
    return loras


class LoraHost(Protocol):
    """A loaded model that takes LoRAs (a family's model): into every expert it denoises with."""

    def load_lora(self, source: str, adapter_name: str) -> None: ...

    def unload_loras(self) -> None: ...

    def set_adapters(self, names: list[str], scales: list[float]) -> None: ...


class StyleLoras:
    """Keeps at most one style LoRA active on a pipeline, swapping it as requests change style."""

    def __init__(
        self, loras: dict[tuple[str | None, Style], str], preset: str | None = None, scale: float = 1.0
    ):
        self.loras = loras
        self.preset = preset
        self.scale = scale
        self.active: str | None = None  # the source now loaded into the pipeline

    @classmethod
    def from_config(cls, text: str, preset: str | None = None) -> StyleLoras:
        loras = parse_style_loras(text)
        if loras and importlib.util.find_spec("peft") is None:
            # diffusers loads LoRAs through peft; without it the first styled request would fail.
            raise ConfigError("FRAMECAST_STYLE_LORAS needs the peft package: pip install peft")
        return cls(loras, preset)

    def source_for(self, style: Style | None) -> str | None:
        if style is None:
            return None
        return self.loras.get((self.preset, style)) or self.loras.get((None, style))

    def activate(self, model: LoraHost, style: Style | None) -> str | None:
        """Make ``style``'s LoRA (or none) the one ``model`` applies; return its source, if any."""
        wanted = self.source_for(style)
        if wanted == self.active:
            return wanted
        if self.active is not None:
            # Unloading restores the base weights exactly, so a request without a style is unaffected.
            model.unload_loras()
            self.active = None
        if wanted is not None:
            assert style is not None
            name = f"style_{style.value}"
            model.load_lora(wanted, name)
            model.set_adapters([name], [self.scale])
            self.active = wanted
            logger.info("style LoRA %s active for %s", wanted, style.value)
        return wanted
