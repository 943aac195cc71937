"""Speed levers applied to a loaded pipeline's transformer, each verified before it is kept.

- Attention backend: every candidate that works offline is run on a probe (through the dispatcher the model
  calls) and checked against fp32 math attention; the fastest that passes wins, else ``native`` (PyTorch
  SDPA's own choice). The ``*_hub`` backends download kernels at first use, so they are never candidates.
- Fused QKV projections: one larger GEMM instead of three per attention.
- Regional ``torch.compile`` of the repeated transformer blocks (``compile_repeated_blocks``). A new input
  shape recompiles (minutes on a cold cache), so a worker warms each generation-size bucket at start.

- VAE: Conv3d weights in the channels-last layout (``channels_last_3d``). Its dtype (bf16 decode) and tiling
  are load-time memory choices of the engine's pipeline; ``bench/gpu_bench.py`` measures what bf16 decode
  changes against fp32 on the same latents.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from framecast.engine.presets import Variant

__all__ = [
    "ATTENTION_CANDIDATES",
    "BackendProbe",
    "apply_variant",
    "channels_last_3d",
    "compile_transformer",
    "fuse_qkv",
    "pick_attention_backend",
    "probe_attention_backends",
    "set_attention_backend",
    "use_fastest_attention",
    "warm_up",
]

logger = logging.getLogger(__name__)

# In order of preference when they are not timed: FlashAttention-3 (a separate Hopper build), cuDNN's fused
# attention, FlashAttention-2 (the flash-attn package), PyTorch's bundled flash kernel, then SDPA's own pick.
ATTENTION_CANDIDATES: tuple[str, ...] = ("_flash_3", "_native_cudnn", "flash", "_native_flash", "native")
# bf16 attention against an fp32 reference lands near 1e-2 at worst; a broken kernel is far off.
_MAX_REL_ERR = {torch.float32: 1e-3, torch.bfloat16: 3e-2, torch.float16: 1e-2}


@dataclass(frozen=True)
class BackendProbe:
    """What one attention backend did on the probe: ran or not (and why), its error, its median time."""

    name: str
    ok: bool
    detail: str = ""
    rel_err: float | None = None
    seconds: float | None = None


def _attention(name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn

    return dispatch_attention_fn(q, k, v, backend=AttentionBackendName(name))


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    q, k, v = (x.float().permute(0, 2, 1, 3) for x in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    return (scores.softmax(-1) @ v).permute(0, 2, 1, 3)


def _median_seconds(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first call builds plans and loads kernels


def probe_attention_backends(
    device: torch.device,
    dtype: torch.dtype,
    *,
    candidates: Sequence[str] = ATTENTION_CANDIDATES,
    check_shape: tuple[int, int, int, int] = (1, 256, 2, 64),
    time_shape: tuple[int, int, int, int] | None = None,
    repeats: int = 3,
) -> list[BackendProbe]:
    """Run each candidate on random (batch, tokens, heads, head_dim) inputs; time the ones that pass on
    ``time_shape``."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(check_shape, generator=gen).to(device, dtype) for _ in range(3))
    reference = _reference(q, k, v)
    probes = []
    for name in candidates:
        try:
            out = _attention(name, q, k, v)
        # A backend that cannot run here fails in many ways (no package, no kernel for the device or dtype).
        except Exception as exc:  # noqa: BLE001
            probes.append(BackendProbe(name, False, f"{type(exc).__name__}: {str(exc)[:120]}"))
            continue
        rel_err = float((out.float() - reference).norm() / reference.norm())
        if not rel_err < _MAX_REL_ERR.get(dtype, 3e-2):
            probes.append(BackendProbe(name, False, "wrong result", rel_err))
            continue
        seconds = None
        if time_shape is not None:
            tq, tk, tv = (torch.randn(time_shape, device=device, dtype=dtype) for _ in range(3))
            try:
                seconds = _median_seconds(functools.partial(_attention, name, tq, tk, tv), device, repeats)
            # Some kernels refuse long sequences or large batches that the small check passed.
            except Exception as exc:  # noqa: BLE001
                probes.append(BackendProbe(name, False, f"at {time_shape}: {type(exc).__name__}", rel_err))
                continue
        probes.append(BackendProbe(name, True, "", rel_err, seconds))
    return probes


def pick_attention_backend(probes: Iterable[BackendProbe]) -> str:
    """The fastest backend that passed (by time when timed, else by preference order); ``native`` if none
    did."""
    passed = [p for p in probes if p.ok]
    if not passed:
        return "native"
    if all(p.seconds is not None for p in passed):
        return min(passed, key=lambda p: p.seconds or 0.0).name
    return passed[0].name


def set_attention_backend(transformer, name: str) -> None:
    """Route every attention of ``transformer`` through ``name`` (``native``: PyTorch SDPA's own choice).

    diffusers' ``set_attention_backend`` also sets a process-wide active backend that
    ``reset_attention_backend``
    leaves in place, so going back to the default goes through ``set_attention_backend("native")`` too.
    """
    transformer.set_attention_backend(name)


def use_fastest_attention(
    transformers: Sequence,
    *,
    time_shape: tuple[int, int, int, int] | None = None,
    candidates: Sequence[str] = ATTENTION_CANDIDATES,
) -> tuple[str, list[BackendProbe]]:
    """Probe the backends on the transformers' device and dtype, set the winner on each, and say what was
    tried."""
    first = transformers[0]
    probes = probe_attention_backends(first.device, first.dtype, candidates=candidates, time_shape=time_shape)
    name = pick_attention_backend(probes)
    for model in transformers:
        set_attention_backend(model, name)
    logger.info(
        "attention backend %s (%s)", name, ", ".join(f"{p.name}:{'ok' if p.ok else 'no'}" for p in probes)
    )
    return name, probes


def fuse_qkv(transformer, on: bool = True) -> None:
    """One GEMM for Q, K and V of self-attention (K and V of cross-attention) instead of three; same math.

    The fused weights are extra copies of the projections; ``on=False`` drops them again. diffusers creates them
    as new ``nn.Parameter``s that require grad even when the model is frozen; they are frozen here like the rest
    of the model, so a forward outside ``no_grad`` does not start recording an autograd graph because of them.
    """
    if on:
        frozen = not any(p.requires_grad for p in transformer.parameters())
        transformer.fuse_qkv_projections()
        if frozen:
            transformer.requires_grad_(False)
    else:
        transformer.unfuse_qkv_projections()


def channels_last_3d(module: torch.nn.Module) -> torch.nn.Module:
    """Store every Conv3d weight as NDHWC, the layout cuDNN's tensor-core 3D convolutions use; same math."""
    for conv in module.modules():
        if isinstance(conv, torch.nn.Conv3d):
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return module


def compile_transformer(
    transformer, *, backend: str = "inductor", fullgraph: bool = True, mode: str | None = None
):
    """Compile the repeated blocks in place: one graph serves all blocks; shapes are static, one per
    bucket."""
    kwargs: dict = {"backend": backend, "fullgraph": fullgraph, "dynamic": False}
    if mode is not None:
        kwargs["mode"] = mode
    transformer.compile_repeated_blocks(**kwargs)
    return transformer


def warm_up(run_one_step: Callable[[int, int, int], object], buckets: Iterable[tuple[int, int, int]]) -> dict:
    """Run one step per (width, height, frames) bucket so compilation happens at start-up, not in a
    request."""
    seconds = {}
    for bucket in buckets:
        start = time.perf_counter()
        run_one_step(*bucket)
        seconds[bucket] = time.perf_counter() - start
    return seconds


def apply_variant(pipe, variant: Variant) -> None:
    """Fuse the variant's LoRAs into the loaded pipeline, switch its cache on and set its sampler (at load;
    distilled weights were loaded in place of the base ones already, from the preset's ``repo_id``)."""
    if variant.dmd_timesteps:
        from framecast.engine.dmd import DMDScheduler

        pipe.scheduler = DMDScheduler(variant.dmd_timesteps)
    if variant.lora_files:
        transformers = [pipe.transformer] + ([pipe.transformer_2] if pipe.transformer_2 is not None else [])
        if len(variant.lora_files) != len(transformers):
            raise ValueError(
                f"{variant.name}: {len(variant.lora_files)} LoRA files for {len(transformers)} experts"
            )
        for expert, weight_name in enumerate(variant.lora_files):
            pipe.load_lora_weights(
                variant.lora_repo,
                weight_name=weight_name,
                adapter_name=f"{variant.name}-{expert}",
                load_into_transformer_2=expert == 1,
            )
        # fuse_lora fuses only "transformer" unless told: the low-noise expert's LoRA would be dropped.
        pipe.fuse_lora(components=["transformer", "transformer_2"][: len(transformers)])
        pipe.unload_lora_weights()  # fused into the weights: no adapter hooks left at run time
    if variant.first_block_cache is not None:
        from diffusers import FirstBlockCacheConfig

        for model in (pipe.transformer, pipe.transformer_2):
            if model is not None:
                model.enable_cache(FirstBlockCacheConfig(threshold=variant.first_block_cache))
