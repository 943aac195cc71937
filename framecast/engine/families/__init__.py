"""The registry of model families: one sub-package per model line (``wan/``, ``ltx2/``, ...), found on disk.

A family registers its class from its own ``__init__.py`` (``register``); adding a folder here is all it takes
for ``get_family`` to find it. Names are unique: a second family with a taken name is refused. Importing this
module loads no family (and no torch); ``get_family`` imports them on first use.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framecast.errors import ConfigError

if TYPE_CHECKING:
    from framecast.engine.families.base import Family

__all__ = ["all_families", "get_family", "register", "save_tiny", "tiny_family", "tiny_pipeline"]

_FAMILIES: dict[str, type[Family]] = {}
_discovered = False


def register(family: type[Family]) -> type[Family]:
    """Add a family class under its ``name``; a name already taken is an error, never a silent replacement."""
    existing = _FAMILIES.get(family.name)
    if existing is not None and existing is not family:
        raise ValueError(
            f"a model family named {family.name!r} is registered already ({existing.__module__}.{existing.__name__})"
        )
    _FAMILIES[family.name] = family
    return family


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")
    _discovered = True


def get_family(name: str) -> type[Family]:
    _discover()
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ConfigError(f"no model family named {name!r}: one of {', '.join(sorted(_FAMILIES))}") from None


def all_families() -> list[type[Family]]:
    _discover()
    return list(_FAMILIES.values())


def tiny_family(preset_name: str) -> Family:
    """A preset's family with its tiny model loaded (random weights, CPU, float32)."""
    import torch

    from framecast.engine.presets import VARIANTS, get_preset

    preset = get_preset(preset_name)
    family = get_family(preset.family)(preset, VARIANTS.get(preset.variant))
    family.load(None, torch.float32)
    return family


def tiny_pipeline(preset_name: str) -> Any:
    """The tiny pipeline of a preset as its family builds it (random weights, CPU, float32)."""
    return tiny_family(preset_name).pipe


def save_tiny(preset_name: str, folder: str | Path) -> Path:
    """Write a preset's tiny model as its family lays out its weights (``Family.save``: ``save_pretrained``,
    plus any files beside the pipeline): a stand-in for downloaded weights, loaded back through the same
    ``from_pretrained`` path as real ones (``FRAMECAST_MODEL_PATH``)."""
    folder = Path(folder)
    tiny_family(preset_name).save(folder)
    return folder
