"""``EngineOptions``: the few typed values the engine needs, built once from ``Settings`` by ``create_engine``.

Nothing below ``framecast/engine/__init__.py`` reads ``Settings``: the engine, its families, levers and creative
stages get this object (or the fields they need) passed down. It imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from framecast.engine.stages import UPSCALER_REPO
from framecast.errors import ConfigError

__all__ = ["DEVICES", "LONG_CLIPS", "OFFLOAD_MODES", "VAE_DTYPES", "EngineOptions"]

DEVICES = ("auto", "cuda", "cpu")
OFFLOAD_MODES = ("none", "model", "sequential", "group", "auto")
VAE_DTYPES = ("float32", "bfloat16")
LONG_CLIPS = ("native", "stretch")


@dataclass(frozen=True)
class EngineOptions:
    """How one engine loads and runs its model; every field has the default a plain ``make run`` uses."""

    model: str = "auto"  # the preset asked for (``auto`` picks by hardware)
    model_path: str = ""  # a local folder holding the preset's diffusers weights
    device: str = "auto"  # cuda | cpu | auto
    offload: str = "auto"  # none | model | sequential | group | auto
    vae_dtype: str = "float32"  # float32 (the authors' choice) | bfloat16 (speed.vae, opt-in)
    compile: bool = False  # regional torch.compile of the transformer blocks (speed.compile)
    compile_warmup: str = "default"  # shapes compiled at load (planning.buckets.warmup_shapes)
    fp8: bool = False  # FP8 matmuls in the transformer blocks (speed.fp8, opt-in)
    long_clips: str = "native"  # native (the preset's real-motion method) | stretch (opt-in, fast, slowed)
    data_dir: Path = Path("./data")  # the compile cache lives under it
    # Creative controls (creative/)
    style_loras: str = ""
    prompt_llm: str = "Qwen/Qwen2.5-1.5B-Instruct"
    prompt_llm_url: str = ""
    prompt_llm_api_key: str = ""
    audio_model: str = "stabilityai/stable-audio-open-1.0"
    parallel: str = "auto"  # a GPU group's layout: auto (parallel.rule) or e.g. "cfg2,ulysses4"
    # The upscaler stage (stages/upscale.py): a repo id, a folder, or "tiny" (its random-weight test model)
    upscaler_model: str = UPSCALER_REPO

    def __post_init__(self) -> None:
        # Checked here, once, so that a typo fails at start-up with the variable's name, not mid-load.
        for name, value, choices in (
            ("FRAMECAST_DEVICE", self.device, DEVICES),
            ("FRAMECAST_OFFLOAD", self.offload, OFFLOAD_MODES),
            ("FRAMECAST_VAE_DTYPE", self.vae_dtype, VAE_DTYPES),
            ("FRAMECAST_LONG_CLIPS", self.long_clips, LONG_CLIPS),
        ):
            if value not in choices:
                raise ConfigError(f"{name}={value!r}: choose one of {', '.join(choices)}")
        from framecast.engine.parallel.rule import parse_layout

        parse_layout(self.parallel)
        if self.fp8 and self.style_loras:
            raise ConfigError(
                "FRAMECAST_FP8=1 cannot be combined with FRAMECAST_STYLE_LORAS: style LoRAs are applied to the "
                "bf16 linear layers that FP8 replaces"
            )
