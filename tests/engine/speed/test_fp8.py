"""FP8 matmuls (fp8.py) on the CPU: the quantised arithmetic, which layers change, and undoing it."""

from __future__ import annotations

import logging

import pytest
import torch

from framecast.engine import EngineOptions
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families.wan import build
from framecast.engine.presets import get_preset
from framecast.engine.speed import fp8
from framecast.errors import ConfigError

CPU = torch.device("cpu")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def test_an_fp8_linear_rounds_weights_and_activations_to_e4m3_per_row_and_nothing_else():
    gen = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(64, 32).requires_grad_(False)
    x = torch.randn(5, 7, 64, generator=gen)
    layer = fp8.Fp8Linear(linear)
    assert layer.weight_fp8.dtype == torch.float8_e4m3fn and layer.weight_scale.shape == (1, 32)

    def e4m3(t: torch.Tensor) -> torch.Tensor:  # per-row scaling to the format's largest value, then rounding
        scale = t.abs().amax(-1, keepdim=True) / 448
        return (t / scale).to(torch.float8_e4m3fn).double() * scale.double()

    expected = e4m3(x.reshape(-1, 64)) @ e4m3(linear.weight).t() + linear.bias.double()
    assert torch.allclose(layer(x).double(), expected.reshape(5, 7, 32), rtol=1e-5, atol=1e-5)
    assert 1e-3 < rel_err(layer(x), linear(x)) < 0.06  # e4m3: 3 mantissa bits, visibly not bf16


def test_quantize_swaps_the_blocks_aligned_linears_only_and_restore_gives_back_the_exact_model():
    transformer = build.build_transformer(build.tiny_config("wan2.1-t2v-1.3b"), CPU, torch.float32)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 3, 16, 16, generator=gen)
    context = torch.randn(1, 8, 32, generator=gen)
    t = torch.tensor([700.0])
    with torch.no_grad():
        reference = transformer(x, t, context, return_dict=False)[0]
        # Per block: Q, K, V, O of both attentions and the FFN's two projections; embedders stay as they are.
        assert fp8.quantize_linears(transformer) == 10 * len(transformer.blocks)
        assert type(transformer.proj_out) is torch.nn.Linear
        quantized = transformer(x, t, context, return_dict=False)[0]
        assert 1e-3 < rel_err(quantized, reference) < 0.1
        assert fp8.restore_linears(transformer) == 10 * len(transformer.blocks)
        assert torch.equal(transformer(x, t, context, return_dict=False)[0], reference)


def test_layers_whose_sizes_the_fp8_kernel_cannot_take_are_left_alone():
    block = torch.nn.Module()
    block.odd = torch.nn.Linear(24, 32)
    holder = torch.nn.Module()
    holder.blocks = torch.nn.ModuleList([block])
    assert fp8.quantize_linears(holder) == 0 and type(block.odd) is torch.nn.Linear


def test_fp8_is_reported_and_ignored_where_it_cannot_run_and_refused_with_style_loras(caplog):
    assert not fp8.fp8_matmul_supported(CPU)
    engine = DiffusersEngine(get_preset("tiny-wan"), EngineOptions(device="cpu", fp8=True))
    with caplog.at_level(logging.WARNING):
        engine.load()
    assert "FRAMECAST_FP8=1 ignored" in caplog.text
    assert not any(isinstance(m, fp8.Fp8Linear) for m in engine.pipe.transformer.modules())

    with pytest.raises(ConfigError, match="cannot be combined with FRAMECAST_STYLE_LORAS"):
        EngineOptions(device="cpu", fp8=True, style_loras="anime=/x")


def test_fp8_blocks_compile_as_whole_graphs():
    from framecast.engine.speed.compile import compile_transformer

    transformer = build.build_transformer(build.tiny_config("wan2.1-t2v-1.3b"), CPU, torch.float32)
    gen = torch.Generator().manual_seed(2)
    x, context = torch.randn(1, 16, 3, 16, 16, generator=gen), torch.randn(1, 8, 32, generator=gen)
    t = torch.tensor([300.0])
    fp8.quantize_linears(transformer)
    torch._dynamo.reset()
    try:
        with torch.no_grad():
            eager = transformer(x, t, context, return_dict=False)[0]
            compile_transformer(transformer, backend="eager")  # fullgraph=True: a graph break fails
            assert torch.allclose(transformer(x, t, context, return_dict=False)[0], eager, atol=1e-6)
    finally:
        torch._dynamo.reset()
