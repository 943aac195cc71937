"""What bench/gpu_bench.py measures: its cases, arms, budget and FLOP count (plain data and arithmetic)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from framecast.engine import presets
from framecast.engine.families.wan import loop as wan_loop

PROMPT = "a red fox runs through fresh snow at dawn, cinematic light, shallow depth of field"


@dataclass(frozen=True)
class Case:
    width: int
    height: int
    frames: int
    steps: int  # the preset's default step count, used to extrapolate
    guidance: float
    negative_prompt: str
    text_tokens: int = 512  # the pipeline's max_sequence_length (umT5 output, padded)


def _case(name: str, width: int, height: int, frames: int, text_tokens: int = 512) -> Case:
    preset = presets.get_preset(name)
    return Case(
        width, height, frames, preset.steps, preset.guidance_scale, preset.negative_prompt, text_tokens
    )


CASES = {
    "wan2.2-ti2v-5b": _case("wan2.2-ti2v-5b", 1280, 704, 121),
    "wan2.1-t2v-1.3b": _case("wan2.1-t2v-1.3b", 832, 480, 81),
}
TINY_CASES = {name: _case(name, 64, 64, 5, text_tokens=32) for name in CASES}


class Budget:
    """Wall-clock budget: an item runs only if its estimate fits in what is left, else it is skipped and said
    so."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.seconds = seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)

    def allows(self, what: str, estimate: float, log) -> bool:
        if estimate <= self.left():
            return True
        log(f"SKIP {what}: needs ~{estimate:.0f}s, {self.left():.0f}s left")
        return False


@dataclass
class Arm:
    name: str
    step_seconds: list[float] = field(default_factory=list)
    peak_gib: float = 0.0
    latents: torch.Tensor | None = None
    note: str = ""

    @property
    def s_per_step(self) -> float:
        return statistics.median(self.step_seconds) if self.step_seconds else float("nan")


@dataclass
class PresetRun:
    """One preset's modules and what has been measured on them so far."""

    name: str
    cfg: dict
    case: Case
    res: dict  # this preset's entry of the results (plain data: bench.json and the tables)
    pipe: Any  # the plain WanPipeline (fp32 VAE); every arm shares its modules
    transformer: Any
    x0: torch.Tensor  # the initial noise every arm starts from
    est_step: float  # seconds per step assumed until one is measured
    expand: bool  # Wan2.2 TI2V's per-token timesteps
    embeds: tuple = ()
    backend: str = "native"
    arms: dict[str, Arm] = field(default_factory=dict)

    def arm_estimate(self, steps: int) -> float:
        measured = [a.s_per_step for a in self.arms.values() if a.step_seconds]
        return (min(measured) if measured else self.est_step) * steps * 1.3 + 2


FULL = wan_loop.LoopOptions(batched_cfg=True, uniform_timesteps=True)
CPU = torch.device("cpu")


def dit_flops(
    cfg: dict, tokens: int, text_tokens: int = 512, rows: int = 1, per_token_time: bool = False
) -> float:
    """FLOPs of one transformer forward over ``rows`` batch rows (formula in the module docstring)."""
    t = cfg["transformer"]
    d = t["num_attention_heads"] * t["attention_head_dim"]
    f, n = t["ffn_dim"], t["num_layers"]
    patch = t["patch_size"][0] * t["patch_size"][1] * t["patch_size"][2]
    block = 8 * tokens * d * d + 4 * tokens * tokens * d  # self-attention: projections, scores and values
    block += 4 * tokens * d * d + 4 * text_tokens * d * d + 4 * tokens * text_tokens * d  # cross-attention
    block += 4 * tokens * d * f  # feed-forward
    time_rows = tokens if per_token_time else 1
    embed = 2 * text_tokens * (t["text_dim"] * d + d * d)  # text embedder
    embed += 2 * time_rows * (t["freq_dim"] * d + d * d + d * 6 * d)  # time embedder and projection
    embed += 2 * tokens * d * (t["in_channels"] + t["out_channels"]) * patch  # patch embed and proj_out
    return float(rows * (n * block + embed))


def latent_tokens(cfg: dict, case: Case) -> int:
    vae, patch = cfg["vae"], cfg["transformer"]["patch_size"]
    frames = (case.frames - 1) // vae["scale_factor_temporal"] + 1
    s = vae["scale_factor_spatial"]
    return (frames // patch[0]) * (case.height // s // patch[1]) * (case.width // s // patch[2])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def latent_tokens_of(latents: torch.Tensor, transformer) -> int:
    p = transformer.config.patch_size
    return (latents.shape[2] // p[0]) * (latents.shape[3] // p[1]) * (latents.shape[4] // p[2])
