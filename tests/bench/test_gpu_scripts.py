"""The GPU scripts run end to end at tiny size on the CPU, so the one GPU call cannot fail on trifles."""

from __future__ import annotations

import json

import pytest
import torch

from bench import gpu_bench, gpu_report, gpu_smoke
from framecast.engine.families.ltx2 import build as ltx2_build
from framecast.engine.families.wan import build as wan_build

FULL_SIZE_PARAMS = {  # published sizes, in billions
    "wan2.2-ti2v-5b": (4.9, 5.1),
    "wan2.1-t2v-1.3b": (1.3, 1.5),
    "wan2.2-t2v-a14b": (14.0, 14.5),
}


@pytest.mark.parametrize("name", sorted(FULL_SIZE_PARAMS))
def test_full_size_configs_build_the_published_models(name):
    cfg = wan_build.load_config(name)
    meta = torch.device("meta")
    transformer = wan_build.build_transformer(cfg, meta, torch.bfloat16)
    billions = sum(p.numel() for p in transformer.parameters()) / 1e9
    low, high = FULL_SIZE_PARAMS[name]
    assert low < billions < high
    vae = wan_build.build_vae(cfg, meta, torch.bfloat16)
    assert vae.config.z_dim == cfg["transformer"]["in_channels"]


def test_umt5_xxl_config_builds_the_5_7b_encoder():
    encoder = wan_build.build_text_encoder("umt5-xxl", torch.device("meta"), torch.bfloat16, 30)
    assert 5.6 < sum(p.numel() for p in encoder.parameters()) / 1e9 < 5.8
    assert encoder.dtype == torch.bfloat16


def test_device_build_casts_like_from_pretrained(tmp_path):
    from diffusers import WanTransformer3DModel

    cfg = wan_build.tiny_config("wan2.2-ti2v-5b")
    wan_build.build_transformer(cfg, torch.device("cpu"), torch.float32).save_pretrained(tmp_path)
    loaded = WanTransformer3DModel.from_pretrained(tmp_path, torch_dtype=torch.bfloat16)
    built = wan_build.build_transformer(cfg, torch.device("cpu"), torch.bfloat16)
    tensors = dict(built.named_parameters()) | dict(built.named_buffers())
    for name, tensor in [*loaded.named_parameters(), *loaded.named_buffers()]:
        assert tensors[name].dtype == tensor.dtype, name
    assert torch.equal(built.rope.freqs_cos, loaded.rope.freqs_cos)


def test_gpu_bench_tiny_runs_every_arm_agrees_with_plain_and_counts_flops(tmp_path, capsys):
    args = ["--tiny", "--compile", "--compile-backend", "eager", "--timed-steps", "2", "--out", str(tmp_path)]
    results = gpu_bench.main(args)
    printed = capsys.readouterr().out
    exact = {"plain", "framecast", "cfg-batch"}
    expected = {
        "wan2.2-ti2v-5b": exact | {"uniform-t", "no-cfg", "fp8", "+compile", "+compile+fp8"},
        "wan2.1-t2v-1.3b": exact | {"fp8"},
    }
    for name in gpu_bench.CASES:
        res = results["presets"][name]
        assert expected[name] <= set(res["arms"])
        for arm_name, arm in res["arms"].items():
            assert len(arm["steps"]) == 2
            if arm_name in ("plain", "no-cfg"):
                continue
            latents_err, update_err = (float(x) for x in arm["rel_err"].split(" / "))
            if "fp8" in arm_name:  # e4m3 rounding: a changed result, reported, still close
                assert 1e-6 < latents_err < 1e-2, arm_name
            else:
                assert latents_err < 1e-4 and update_err < 1e-3, arm_name
        assert res["decode_fp32_s"] is not None
        assert res["decode_bf16_cl3d_vs_bf16_rel_err"] < 1e-5
        assert res["decode_fp32_cl3d_vs_fp32_rel_err"] < 1e-5
        # The analytic DiT FLOPs (the formula in gpu_bench's docstring) are what torch's flop counter counts.
        assert res["counted_tflop_per_step"] == pytest.approx(res["analytic_tflop_per_step"], rel=1e-3)
        plain, framecast = gpu_report.end_to_end(res)
        assert plain and framecast
    turbo = results["presets"]["wan2.2-ti2v-5b"]["turbo"]
    assert set(turbo) == {"wan2.2-ti2v-5b-turbo (turbo)", "wan2.2-ti2v-5b-turbo (turbo +compile)"}
    for run in turbo.values():
        assert run["steps"] == 3
        assert run["total_s"] == pytest.approx(run["text_s"] + run["denoise_s"] + run["decode_s"])
    assert not results["presets"]["wan2.1-t2v-1.3b"]["turbo"]  # no DMD variant of the 1.3B
    assert not results["skipped"] and "errors" not in results
    assert printed.rstrip().endswith((tmp_path / "bench.md").read_text().rstrip())
    assert "wan2.2-ti2v-5b-turbo (turbo): 3 DMD steps, no CFG, measured end to end" in printed
    assert json.loads((tmp_path / "bench.json").read_text())["presets"].keys() == results["presets"].keys()


def test_gpu_bench_narrowed_to_some_arms_without_extras(tmp_path):
    args = ["--tiny", "--arms", "plain,framecast", "--no-extras", "--compile", "--timed-steps", "1"]
    results = gpu_bench.main([*args, "--out", str(tmp_path)])
    for name in gpu_bench.CASES:
        res = results["presets"][name]
        assert set(res["arms"]) == {"plain", "framecast"}  # no +compile: not among the arms asked for
        assert not res["turbo"]
        assert float(res["arms"]["framecast"]["rel_err"].split(" / ")[0]) < 1e-4
        assert res["decode_bf16_s"] is not None and res["decode_fp32_s"] is not None  # end to end needs fp32
        assert "decode_bf16_cl3d_s" not in res and "counted_tflop_per_step" not in res
    assert not results["skipped"] and "errors" not in results
    with pytest.raises(SystemExit):
        gpu_bench.parse_args(["--arms", "plain,bogus"])


def test_gpu_bench_skips_what_the_budget_cannot_hold(tmp_path):
    results = gpu_bench.main(["--tiny", "--budget-seconds", "0", "--out", str(tmp_path)])
    assert results["presets"] == {}
    assert len(results["skipped"]) == len(gpu_bench.CASES)
    assert "skipped:" in (tmp_path / "bench.md").read_text()


def test_gpu_smoke_tiny_runs_each_preset(tmp_path, capsys):
    rows = gpu_smoke.main(["--tiny", "--out", str(tmp_path)])
    assert [r["preset"] for r in rows] == list(gpu_smoke.SIZES)
    for row in rows:
        assert "error" not in row
        assert len(row["step_s"]) == 2 and row["finite"]
        assert row["video"] == [1, 3, 9, 64, 64]
    assert "| wan2.2-t2v-a14b |" in capsys.readouterr().out


def test_gpu_scripts_start_without_packages_the_gpu_image_lacks(tmp_path):
    """The GPU image has torch, transformers and accelerate, plus the carried wheels (diffusers, pydantic)."""
    import subprocess
    import sys
    from pathlib import Path

    missing = ["av", "fastapi", "starlette", "sqlalchemy", "uvicorn", "cryptography", "ftfy", "torchsde"]
    code = (
        "import sys, runpy\n"
        f"for name in {missing!r}: sys.modules[name] = None\n"
        "sys.argv = ['gpu_smoke', '--tiny', '--presets', 'wan2.1-t2v-1.3b', '--out', sys.argv[1]]\n"
        "runpy.run_module('bench.gpu_smoke', run_name='__main__')\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((tmp_path / "smoke.json").read_text())[0]["finite"] is True


def test_the_cuda_tests_collect_with_only_what_the_gpu_image_has(tmp_path):
    """bench/gpu_run.sh runs tests/engine/test_cuda.py there with --noconftest, PyAV carried as a wheel."""
    import subprocess
    import sys
    from pathlib import Path

    missing = ["fastapi", "starlette", "sqlalchemy", "uvicorn", "cryptography", "ftfy", "torchsde"]
    code = (
        "import sys, pytest\n"
        f"for name in {missing!r}: sys.modules[name] = None\n"
        "sys.exit(pytest.main(['--noconftest', '-p', 'no:cacheprovider', '-p', 'no:warnings', '-q',"
        " 'tests/engine/test_cuda.py']))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "skipped" in done.stdout or "passed" in done.stdout


def test_ltx2_config_builds_the_19b_transformer():
    from diffusers import LTX2VideoTransformer3DModel

    cfg = ltx2_build.load_config()
    with torch.device("meta"):
        transformer = LTX2VideoTransformer3DModel.from_config(cfg["transformer"])
    assert 18.5 < sum(p.numel() for p in transformer.parameters()) / 1e9 < 19.5


def test_the_ulysses_cost_model_counts_four_all_to_alls_of_each_layers_activations():
    from bench import gpu_ranks

    cfg = wan_build.load_config("wan2.2-t2v-a14b")
    tokens = gpu_ranks.tokens_of(cfg, 832, 480, 81)
    assert tokens == 21 * 30 * 52
    # 40 layers x 4 all-to-alls x half of (tokens/2 x 5120 x 2 bytes), one row (CFG on the other rank pair).
    assert gpu_ranks.ulysses_bytes(cfg, tokens, 2, rows=1) == 40 * 4 * (tokens / 2 * 5120 * 2) / 2
    rows = {(r["model"], r["size"][:4], r["ranks"], r["link"][:3]): r for r in gpu_ranks.cost_model()}
    eight = rows[("wan2.2-t2v-a14b", "720p", 8, "NVL")]
    assert eight["layout"] == "cfg2,ulysses4" and 0.9 < eight["efficiency"] <= 1.0
    assert rows[("wan2.2-t2v-a14b", "720p", 8, "PCI")]["efficiency"] < eight["efficiency"]


def test_the_upscalers_class_defaults_are_its_published_geometry():
    from diffusers import Kandinsky6SRLatentUpscalerBank, Kandinsky6SRTransformer3DModel, Kandinsky6SRVAE

    published = {  # billions of parameters, from the model card of the distilled VSR
        Kandinsky6SRTransformer3DModel: 1.41,
        Kandinsky6SRVAE: 1.74,
        Kandinsky6SRLatentUpscalerBank: 3.65,
    }
    with torch.device("meta"):
        for cls, billions in published.items():
            assert round(sum(p.numel() for p in cls().parameters()) / 1e9, 2) == billions, cls.__name__


def test_gpu_vsr_tiny_times_every_case_at_the_planned_size(tmp_path):
    import dataclasses

    from bench import gpu_vsr
    from framecast.engine.planning.upscale import upscaled_size
    from framecast.engine.stages.upscale import Upscaler, build_tiny_upscaler

    results = gpu_vsr.main(["--tiny", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "vsr.json").read_text()) == results
    spec = Upscaler(build_tiny_upscaler(), "tiny").spec
    for name, (width, height, frames, scale) in gpu_vsr.TINY_CASES.items():
        result = results[name]
        assert result["output"] == "x".join(map(str, upscaled_size(spec, width, height, scale)))
        assert result["frames"] == frames and result["seconds"] > 0
    assert "2 window(s)" in results["tiny 17 frames, two windows"]["log"]
    full = dataclasses.replace(spec, tile_sizes=((512, 512), (512, 768), (768, 512)))  # the published tiles
    for width, height, _, scale in gpu_vsr.CASES.values():  # every full-size case is one the pipeline takes
        assert upscaled_size(full, width, height, scale) is not None
