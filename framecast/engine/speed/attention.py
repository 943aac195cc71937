"""The attention lever: route the transformers' attention through the fastest backend that computes it right.

Every candidate that works offline is run on a probe (through the dispatcher the model calls) and checked against
fp32 math attention; the fastest that passes wins, else ``native`` (PyTorch SDPA's own choice). The ``*_hub``
backends download kernels at first use, so they are never candidates. Exact: a backend that does not match the
reference is refused.

A model whose attention always takes a padding mask (``Modules.masked_attention``) is probed with one of the same
form, so that a backend which refuses masks (dense flash, FA3) or mishandles them is never picked for it: its
first step would fail, although ``set_attention_backend`` accepts the name.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from framecast.engine.speed import Modules

__all__ = [
    "ATTENTION_CANDIDATES",
    "AttentionOptions",
    "BackendProbe",
    "apply",
    "pick_attention_backend",
    "probe_attention_backends",
    "set_attention_backend",
    "use_fastest_attention",
]

logger = logging.getLogger(__name__)

# In order of preference when they are not timed: FlashAttention-3 (a separate Hopper build), cuDNN's fused
# attention, FlashAttention-2 (the flash-attn package), PyTorch's bundled flash kernel, then SDPA's own pick. The
# varlen builds of FA3 and FA2 follow their dense ones: they are what a padding mask needs (diffusers' HunyuanVideo
# 1.5 docs recommend them), and without a mask they compute the same as the dense ones.
ATTENTION_CANDIDATES: tuple[str, ...] = (
    "_flash_3",
    "_flash_varlen_3",
    "_native_cudnn",
    "flash",
    "flash_varlen",
    "_native_flash",
    "native",
)
# The share of tokens a masked probe pads, as a model pads its text to a fixed length.
_PADDED = 1 / 8
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


def _attention(
    name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    from diffusers.models.attention_dispatch import AttentionBackendName, dispatch_attention_fn

    return dispatch_attention_fn(q, k, v, attn_mask=mask, backend=AttentionBackendName(name))


def _real_tokens(tokens: int, device: torch.device) -> torch.Tensor:
    """Which of a masked probe's tokens are real: all but the last ``_PADDED`` share."""
    return torch.arange(tokens, device=device) < tokens - int(tokens * _PADDED)


def _padding_mask(batch: int, tokens: int, device: torch.device) -> torch.Tensor:
    """The (batch, 1, tokens, tokens) bool mask a model that pads its text builds: a pair of tokens attends only
    when both are real, so a padded token's row is all False."""
    real = _real_tokens(tokens, device)
    return (real[:, None] & real[None, :])[None, None].repeat(batch, 1, 1, 1)


def _reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    q, k, v = (x.float().permute(0, 2, 1, 3) for x in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
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
    masked: bool = False,
) -> list[BackendProbe]:
    """Run each candidate on random (batch, tokens, heads, head_dim) inputs, with a padding mask when ``masked``;
    time the ones that pass on ``time_shape``."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(check_shape, generator=gen).to(device, dtype) for _ in range(3))
    mask = _padding_mask(check_shape[0], check_shape[1], device) if masked else None
    # Padded tokens' outputs are never used, so only the real ones are compared; all must be finite, as a NaN
    # there would reach the real tokens through the next block's values.
    real = _real_tokens(check_shape[1], device) if masked else slice(None)
    reference = _reference(q, k, v, mask)[:, real]
    probes = []
    for name in candidates:
        try:
            out = _attention(name, q, k, v, mask)
        # A backend that cannot run here fails in many ways (no package, no kernel for the device or dtype, no
        # mask support).
        except Exception as exc:  # noqa: BLE001
            probes.append(BackendProbe(name, False, f"{type(exc).__name__}: {str(exc)[:120]}"))
            continue
        rel_err = float((out[:, real].float() - reference).norm() / reference.norm())
        if not (rel_err < _MAX_REL_ERR.get(dtype, 3e-2) and bool(out.isfinite().all())):
            probes.append(BackendProbe(name, False, "wrong result", rel_err))
            continue
        seconds = None
        if time_shape is not None:
            tq, tk, tv = (torch.randn(time_shape, device=device, dtype=dtype) for _ in range(3))
            tmask = _padding_mask(time_shape[0], time_shape[1], device) if masked else None
            timed = functools.partial(_attention, name, tq, tk, tv, tmask)
            try:
                seconds = _median_seconds(timed, device, repeats)
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
    masked: bool = False,
) -> tuple[str, list[BackendProbe]]:
    """Probe the backends on the transformers' device and dtype (with a padding mask when their attention always
    takes one), set the winner on each, and say what was tried."""
    first = transformers[0]
    probes = probe_attention_backends(
        first.device, first.dtype, candidates=candidates, time_shape=time_shape, masked=masked
    )
    name = pick_attention_backend(probes)
    for model in transformers:
        set_attention_backend(model, name)
    logger.info(
        "attention backend %s (%s)", name, ", ".join(f"{p.name}:{'ok' if p.ok else 'no'}" for p in probes)
    )
    return name, probes


@dataclass(frozen=True)
class AttentionOptions:
    # Long enough that the timing ranks the kernels as a full-size clip would.
    time_tokens: int = 8192
    candidates: tuple[str, ...] = ATTENTION_CANDIDATES


def apply(modules: Modules, options: AttentionOptions = AttentionOptions()) -> None:
    """Probe the backends at the experts' head shape (batch 2: CFG) and set the winner on every expert."""
    shape = (2, options.time_tokens, modules.heads, modules.head_dim)
    use_fastest_attention(
        list(modules.experts),
        time_shape=shape,
        candidates=options.candidates,
        masked=modules.masked_attention,
    )
