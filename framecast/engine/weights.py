"""Where a preset's weights live: the Hugging Face cache (``HF_HOME``) or a ``FRAMECAST_MODEL_PATH`` folder.

Rendering never downloads: a worker with no weights fails with one sentence naming ``framecast models pull``,
so a 30-90 GB download only ever happens when someone asks for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from framecast.engine.presets import Preset
from framecast.errors import ModelUnavailableError


def missing_sentence(preset: Preset) -> str:
    return (
        f"The weights of model {preset.name} ({preset.repo_id}) are not on this machine: "
        f"run `framecast models pull {preset.name}` (or set FRAMECAST_MODEL_PATH to a folder holding them)."
    )


def cached_folder(preset: Preset) -> Path | None:
    """The preset's snapshot folder in the Hugging Face cache, or ``None`` when it was never pulled."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if not preset.repo_id:
        return None
    try:
        return Path(
            snapshot_download(preset.repo_id, local_files_only=True, allow_patterns=_patterns(preset))
        )
    except (LocalEntryNotFoundError, FileNotFoundError):
        return None


def weights_folder(preset: Preset, model_path: str = "") -> Path:
    """The folder to load ``preset`` from; ``ModelUnavailableError`` (one sentence) when there is none."""
    if model_path:
        folder = Path(model_path)
        if not (folder / "model_index.json").is_file():
            raise ModelUnavailableError(
                f"FRAMECAST_MODEL_PATH={model_path} holds no diffusers pipeline (no model_index.json): point "
                f"it at a saved pipeline folder, or unset it and run `framecast models pull {preset.name}`."
            )
        return folder
    cached = cached_folder(preset)
    if cached is None or problems(cached, preset):
        raise ModelUnavailableError(missing_sentence(preset))
    return cached


def problems(folder: Path, preset: Preset | None = None) -> list[str]:
    """What is missing from a diffusers pipeline folder: components, configs, weight shards. With ``preset``:
    a component it loads from another folder (``Preset.component_folders``) is looked for there, and every file
    it pulls by name (an ``allow_patterns`` entry without a wildcard, such as a LoRA beside the pipeline) too."""
    index = folder / "model_index.json"
    if not index.is_file():
        return ["model_index.json"]
    folders = dict(preset.component_folders) if preset else {}
    missing = []
    for name, spec in json.loads(index.read_text()).items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        missing += _component_problems(folder, folders.get(name, name))
    named = [p for p in (preset.allow_patterns or ()) if not any(c in p for c in "*?[")] if preset else []
    return missing + [name for name in named if not (folder / name).is_file()]


def _component_problems(folder: Path, name: str) -> list[str]:
    component = folder / name
    if not component.is_dir() or not any(component.iterdir()):
        return [f"{name}/"]
    missing = []
    for shard_index in component.glob("*.index.json"):
        shards = set(json.loads(shard_index.read_text()).get("weight_map", {}).values())
        missing += [f"{name}/{shard}" for shard in sorted(shards) if not (component / shard).is_file()]
    return missing


def pull(preset: Preset) -> Path:
    """Download the preset's weights into the Hugging Face cache, with huggingface_hub's progress bars."""
    if preset.tiny:
        raise ModelUnavailableError(f"{preset.name} is built in code: there is nothing to pull.")
    return pull_repo(preset.repo_id, f"model {preset.name}", _patterns(preset))


def pull_repo(repo_id: str, what: str, patterns: list[str] | None = None) -> Path:
    """Download one hub repository (all of it, or the files matching ``patterns``) into the cache."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except OSError as exc:  # offline mode, no network, HTTP errors: all OSError subclasses in huggingface_hub
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(
            f"Could not download {repo_id} for {what} ({reason}); check the network, HF_HUB_OFFLINE and, for a "
            "gated repository, that its licence was accepted on the Hub (HF_TOKEN), then run the pull again."
        ) from exc


def cached_repo(repo_id: str) -> Path | None:
    """A whole repository's snapshot folder in the Hugging Face cache, or ``None``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        return None


def _patterns(preset: Preset) -> list[str] | None:
    return list(preset.allow_patterns) if preset.allow_patterns else None
