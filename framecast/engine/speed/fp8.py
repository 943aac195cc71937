"""FP8 matmuls for a transformer's linear layers: opt-in and quality-changing (``FRAMECAST_FP8=1``).

Each ``nn.Linear`` of the repeated blocks becomes an ``Fp8Linear``: its weight stored once in float8 e4m3 with
one scale per output row, and each input row scaled to e4m3 on the fly (dynamic, per-row), so that the GEMM runs
on the tensor cores' FP8 path (``torch._scaled_mm``: twice the bf16 rate on Hopper and Ada) with an fp32
accumulator and a bf16 result. Weights take half the memory.

Rounding to e4m3 (3 mantissa bits) moves each product by up to ~6%; summed over thousands of terms with per-row
scales, a layer's output typically moves by 2-4% relative, more than bf16's rounding. That changes the video,
which is why it is never on by default; ``bench/gpu_bench.py`` reports the latents' distance from the plain bf16
run next to the speed.

Where ``_scaled_mm`` cannot run (a CPU, a GPU older than compute capability 8.9) the same quantised values are
multiplied in the input's dtype: identical rounding of weights and activations, no speed-up. That path is what
CPU tests check the numerics with.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from framecast.engine.speed import Modules

__all__ = ["Fp8Linear", "Fp8Options", "apply", "fp8_matmul_supported", "quantize_linears", "restore_linears"]

logger = logging.getLogger(__name__)

E4M3 = torch.float8_e4m3fn
E4M3_MAX = torch.finfo(E4M3).max  # 448
_ALIGN = 16  # _scaled_mm needs both GEMM dimensions of the weight to be multiples of 16


def fp8_matmul_supported(device: torch.device) -> bool:
    """Whether ``device`` has FP8 tensor-core GEMMs (CUDA compute capability 8.9 or newer)."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


def _rowwise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` (rows, k) as e4m3 values and their fp32 scales (rows, 1): x ≈ values * scales."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3), scale


class Fp8Linear(nn.Module):
    """A linear layer with an e4m3 weight (per-output-row scales) and per-row dynamic e4m3 activations."""

    weight_fp8: torch.Tensor
    weight_scale: torch.Tensor

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.out_dtype = linear.weight.dtype
        weight, scale = _rowwise(linear.weight.detach())
        self.register_buffer("weight_fp8", weight)  # (out, in)
        self.register_buffer("weight_scale", scale.t().contiguous())  # (1, out)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.original = [linear]  # a list, so the bf16 layer is neither a submodule nor saved with the model
        # Decided once, where the layer is built (on its GPU): a device query inside forward would break the
        # compiled graph (regional compile runs with fullgraph=True).
        self.tensor_cores = fp8_matmul_supported(linear.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        values, scale = _rowwise(rows)
        if self.tensor_cores and x.is_cuda:
            out = torch._scaled_mm(
                values,
                self.weight_fp8.t(),  # column-major, as the kernel wants its second operand
                scale_a=scale,
                scale_b=self.weight_scale,
                out_dtype=self.out_dtype,
                use_fast_accum=True,
            )
        else:
            weight = self.weight_fp8.to(x.dtype) * self.weight_scale.t().to(x.dtype)
            out = (values.to(x.dtype) * scale.to(x.dtype)) @ weight.t()
        if self.bias is not None:
            out = out + self.bias.to(out.dtype)
        return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3 per-row"


def _eligible(module: nn.Module) -> bool:
    return (
        type(module) is nn.Linear
        and module.in_features % _ALIGN == 0
        and module.out_features % _ALIGN == 0
        and module.weight.dtype in (torch.bfloat16, torch.float16, torch.float32)
    )


def quantize_linears(transformer: nn.Module, blocks_attr: str = "blocks") -> int:
    """Replace every eligible ``nn.Linear`` inside ``transformer.<blocks_attr>`` with an ``Fp8Linear``, in place;
    the embedders and the output projection stay in their dtype (few FLOPs, sensitive). Returns how many."""
    count = 0
    for block in getattr(transformer, blocks_attr):
        for name, child in list(block.named_modules()):
            if not _eligible(child):
                continue
            parent_name, _, attr = name.rpartition(".")
            setattr(block.get_submodule(parent_name) if parent_name else block, attr, Fp8Linear(child))
            count += 1
    logger.info("FP8 (e4m3, per-row) matmuls in %d linear layers", count)
    return count


def restore_linears(transformer: nn.Module, blocks_attr: str = "blocks") -> int:
    """Put the original layers back (what ``quantize_linears`` replaced). Returns how many."""
    count = 0
    for block in getattr(transformer, blocks_attr):
        for name, child in list(block.named_modules()):
            if isinstance(child, Fp8Linear):
                parent_name, _, attr = name.rpartition(".")
                setattr(block.get_submodule(parent_name) if parent_name else block, attr, child.original[0])
                count += 1
    return count


@dataclass(frozen=True)
class Fp8Options:
    pass  # nothing to choose yet: e4m3, per-row weight and activation scales


def apply(modules: Modules, options: Fp8Options = Fp8Options()) -> None:
    for expert in modules.experts:
        quantize_linears(expert, modules.blocks)
