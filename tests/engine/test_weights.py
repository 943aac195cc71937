from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.presets import get_preset
from framecast.engine.weights import problems
from framecast.errors import ModelUnavailableError

MISSING = """
from framecast.engine.presets import get_preset
from framecast.engine.weights import weights_folder
from framecast.errors import ModelUnavailableError
try:
    weights_folder(get_preset("wan2.1-t2v-1.3b"))
except ModelUnavailableError as exc:
    print(exc)
"""


def test_missing_weights_offline_give_one_sentence_naming_the_pull_command(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", MISSING], capture_output=True, text=True, env=env, check=True)
    message = out.stdout.strip()
    assert "framecast models pull wan2.1-t2v-1.3b" in message
    assert message.endswith(".") and ". " not in message and "\n" not in message
    assert "Traceback" not in out.stderr


def test_a_model_path_without_a_pipeline_is_a_clear_error(tmp_path):
    engine = DiffusersEngine(get_preset("wan2.1-t2v-1.3b"), EngineOptions(model_path=str(tmp_path)))
    with pytest.raises(ModelUnavailableError, match="no model_index.json"):
        engine.load()


def test_problems_names_missing_components_and_shards(tmp_path):
    (tmp_path / "model_index.json").write_text(
        json.dumps(
            {"_class_name": "WanPipeline", "vae": ["diffusers", "AutoencoderKLWan"], "x": [None, None]}
        )
    )
    assert problems(tmp_path) == ["vae/"]
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text("{}")
    (tmp_path / "vae" / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}})
    )
    (tmp_path / "vae" / "model-1.safetensors").write_bytes(b"0")
    assert problems(tmp_path) == ["vae/model-2.safetensors"]


def test_problems_looks_for_a_presets_moved_components_and_named_files_where_it_loads_them(tmp_path):
    import dataclasses
    from types import MappingProxyType

    index = {"_class_name": "LTX2Pipeline", "transformer": ["diffusers", "LTX2VideoTransformer3DModel"]}
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    (tmp_path / "transformer_full").mkdir()
    (tmp_path / "transformer_full" / "config.json").write_text("{}")
    preset = dataclasses.replace(
        get_preset("ltx-2"),
        component_folders=MappingProxyType({"transformer": "transformer_full"}),
        allow_patterns=("model_index.json", "transformer_full/*", "stage-2.safetensors"),
    )
    assert problems(tmp_path) == ["transformer/"]  # no preset: the folder model_index.json names
    assert problems(tmp_path, preset) == ["stage-2.safetensors"]
    (tmp_path / "stage-2.safetensors").write_bytes(b"0")
    assert problems(tmp_path, preset) == []


PULL_OFFLINE = """
from framecast.engine.presets import get_preset
from framecast.engine.weights import pull
from framecast.errors import ModelUnavailableError
try:
    pull(get_preset("wan2.1-t2v-1.3b"))
except ModelUnavailableError as exc:
    print(exc)
"""


def test_pull_while_offline_says_so_in_one_sentence(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", PULL_OFFLINE], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.startswith(
        "Could not download Wan-AI/Wan2.1-T2V-1.3B-Diffusers for model wan2.1-t2v-1.3b"
    )
    assert "\n" not in out.stdout.strip()
