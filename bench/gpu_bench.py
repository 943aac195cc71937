"""Issue 6: plain diffusers against Framecast's path, same card, same model, same steps, in one process.

Full-size Wan transformers, VAEs and the umT5-XXL text encoder with random weights in bf16 (configs from
framecast/engine/families/wan/configs/), built directly on the GPU. Arms, each timed over a few denoising steps after a
warm-up and extrapolated to the preset's default step count:

  plain      WanPipeline.__call__ as diffusers' docs show it: default attention, its own CFG loop (two
             forwards of batch 1 per step), fp32 VAE
  attn       the same loop with the fastest attention backend that passes the probe (speed/attention.py)
  cfg-batch  the Wan family's loop: conditional and unconditional rows in one forward of batch 2, default attention
  uniform-t  the Wan family's loop: one timestep per row instead of per token (TI2V only), sequential CFG
  no-cfg     framecast's step without guidance: what a CFG-free distilled variant pays (presets.VARIANTS)
  framecast  the engine's path: the loop with attn + cfg-batch + uniform-t, cached negative embeddings
  fp8        framecast with FP8 matmuls in the blocks (speed/fp8.py; quality-changing, opt-in in the engine)
  turbo      the preset's DMD variant (wan2.2-ti2v-5b-turbo) measured end to end as a request runs it: prompt
             encode, 3 steps without CFG, fp32 decode, through the family's latents and decode (not
             extrapolated)
  +compile   framecast after compile_repeated_blocks (with --compile; first-steps time reported), then turbo
             and fp8 again on the compiled blocks (``turbo +compile``, ``+compile+fp8``)

``--arms plain,framecast,+compile`` runs only those arms; ``--no-extras`` skips the flop count and the
channels-last decodes (a narrowed rerun). End to end (gpu_report.end_to_end) both plain and framecast decode
with the fp32 VAE, as the engine does.

Every arm starts from the same noise; its latents after the same steps are compared with plain's ("latents
rel err", the issue's check), and so are the changes the steps made ("update rel err": much stricter, since
the noise is shared).

DiT FLOPs per forward are counted analytically (``dit_flops``). With L video tokens, T text tokens,
D = heads x head_dim and F the FFN width, per block: self-attention projections 8·L·D², self-attention
4·L²·D, cross-attention Q/O 4·L·D² and K/V 4·T·D², cross-attention 4·L·T·D, FFN 4·L·D·F; plus the text
embedder, time projection and patch embed/out (small). torch.utils.flop_counter counts one real forward as
a cross-check. Both are set against an 8192³ bf16 matmul timed in the same run. ``--tiny`` runs every path
on the CPU in seconds with tiny models.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from bench.gpu_arms import ArmsMixin
from bench.gpu_model import (
    CASES,
    CPU,
    PROMPT,
    TINY_CASES,
    Budget,
    PresetRun,
    dit_flops,
    latent_tokens,
    rel_err,
)
from bench.gpu_report import NO_CFG_ARMS, format_tables
from framecast.engine.families.wan import build as wan_build
from framecast.engine.families.wan import loop as wan_loop
from framecast.engine.speed import attention


class Bench(ArmsMixin):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device("cpu" if args.tiny else "cuda")
        self.dtype = (
            getattr(torch, args.dtype) if args.dtype else torch.float32 if args.tiny else torch.bfloat16
        )
        self.budget = Budget(args.budget_seconds)
        self.out = Path(args.out) if args.out else None
        self.log_lines: list[str] = []
        self.results: dict = {"presets": {}, "skipped": []}
        # (priority, what, estimated seconds, item): optional work run after every preset's core arms
        self.deferred: list[tuple[int, str, Callable[[], float], Callable[[], None]]] = []

    # -- plumbing --------------------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"[{time.perf_counter() - self.budget.start:7.1f}s] {message}"
        print(line, flush=True)
        self.log_lines.append(line)
        if message.startswith("SKIP"):
            self.results["skipped"].append(message)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float:
        return torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else 0.0

    def timed(self, fn):
        self.sync()
        start = time.perf_counter()
        result = fn()
        self.sync()
        return result, time.perf_counter() - start

    def guarded(self, what: str, fn, default=None):
        """Run one item; a failure is logged with its traceback and the run goes on to the next item."""
        try:
            return fn()
        except Exception:  # noqa: BLE001 - one broken item must not cost the whole GPU call
            self.log(f"ERROR in {what}:\n{traceback.format_exc()}")
            self.results.setdefault("errors", []).append(what)
            return default

    # -- card ------------------------------------------------------------------------------------------------
    def measure_peak(self) -> float:
        n = 1024 if self.args.tiny else 8192
        a = torch.randn(n, n, device=self.device, dtype=self.dtype)
        b = torch.randn(n, n, device=self.device, dtype=self.dtype)
        for _ in range(3):
            a @ b
        times = [self.timed(lambda: a @ b)[1] for _ in range(10)]
        tflops = 2 * n**3 / statistics.median(times) / 1e12
        self.log(f"measured {n}^3 {self.dtype} matmul: {tflops:.1f} TFLOP/s")
        return tflops

    # -- arms ------------------------------------------------------------------------------------------------
    # -- one preset ------------------------------------------------------------------------------------------
    def bench_preset(self, name: str, text_encoder, tokenizer, peak_tflops: float) -> None:
        # 1. Build the preset's modules on the device and draw the shared initial noise
        run = self.build_preset(name, text_encoder, tokenizer, peak_tflops)
        # 2. Text encoding, plain and with the cached negative prompt
        self.encode_text(run)
        # 3. Attention backends at this preset's self-attention shape
        self.probe_attention(run)
        # 4. Arms at equal steps, most important first
        self.core_arms(run)
        # 5. FLOPs of one batched forward, counted by torch
        if self.args.extras:
            self.count_flops(run)
        # 6. VAE decodes (the fp32 one, which the engine and plain both run, may be deferred)
        self.decodes(run)
        # 7. The step-distilled variant measured end to end, as a request runs it
        self.turbo(run, "turbo")
        # 8. Regional compile (minutes cold; it changes the transformer in place): after every preset's core arms
        self.defer_compile(run)
        self.summarize(run)

    def build_preset(self, name: str, text_encoder, tokenizer, peak_tflops: float) -> PresetRun:
        cfg = wan_build.tiny_config(name) if self.args.tiny else wan_build.load_config(name)
        case = (TINY_CASES if self.args.tiny else CASES)[name]
        res: dict = {"case": case.__dict__, "arms": {}, "build_s": {}, "turbo": {}}
        self.results["presets"][name] = res
        tokens = latent_tokens(cfg, case)
        expand = cfg["pipeline"]["expand_timesteps"]
        step_flops = 2 * dit_flops(cfg, tokens, case.text_tokens, per_token_time=expand)
        res["tokens"], res["analytic_tflop_per_step"] = tokens, step_flops / 1e12
        self.log(
            f"== {name}: {case.width}x{case.height}x{case.frames}, {tokens} tokens, "
            f"{step_flops / 1e12:.4g} TFLOP/step (analytic)"
        )
        transformer, res["build_s"]["transformer"] = self.timed(
            lambda: wan_build.build_transformer(cfg, self.device, self.dtype)
        )
        vae32, res["build_s"]["vae"] = self.timed(
            lambda: wan_build.build_vae(cfg, self.device, torch.float32)
        )
        pipe = wan_build.build_pipeline(
            cfg,
            device=self.device,
            dtype=self.dtype,
            vae_dtype=torch.float32,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer=transformer,
            vae=vae32,
            experts=1,
        )
        pipe.set_progress_bar_config(disable=True)
        self.log(
            f"built transformer in {res['build_s']['transformer']:.1f}s, VAE in {res['build_s']['vae']:.1f}s"
        )
        gen = torch.Generator(device="cpu").manual_seed(0)
        channels = cfg["transformer"]["in_channels"]
        x0 = pipe.prepare_latents(1, channels, case.height, case.width, case.frames, torch.float32, CPU, gen)
        # Until a step is measured, assume 40% of peak to decide what fits.
        est_step = step_flops / (0.4 * peak_tflops * 1e12)
        return PresetRun(name, cfg, case, res, pipe, transformer, x0.to(self.device), est_step, expand)

    def encode_text(self, run: PresetRun) -> None:
        """Plain encodes the prompt and the negative prompt every request; framecast caches the negative."""
        cache, case, res = wan_loop.NegativePromptCache(), run.case, run.res

        def encode_plain():
            return run.pipe.encode_prompt(
                PROMPT,
                case.negative_prompt,
                do_classifier_free_guidance=True,
                device=self.device,
                max_sequence_length=case.text_tokens,
            )

        def encode_framecast():
            return wan_loop.encode_prompts(
                run.pipe,
                PROMPT,
                case.negative_prompt,
                guidance=True,
                device=self.device,
                max_sequence_length=case.text_tokens,
                negative_cache=cache,
            )

        encode_plain()  # warm-up
        self.timed(encode_framecast)  # fills the cache, as a worker does at start
        _, res["text_encode_plain_s"] = self.timed(encode_plain)
        run.embeds, res["text_encode_framecast_s"] = self.timed(encode_framecast)
        self.log(
            f"text encode: plain {res['text_encode_plain_s']:.3f}s, framecast {res['text_encode_framecast_s']:.3f}s"
        )

    def probe_attention(self, run: PresetRun) -> None:
        t = run.cfg["transformer"]
        shape = (2, run.res["tokens"], t["num_attention_heads"], t["attention_head_dim"])
        probe = self.guarded(
            "attention probe", lambda: attention.use_fastest_attention([run.transformer], time_shape=shape)
        )
        run.backend = probe[0] if probe else "native"
        attention.set_attention_backend(run.transformer, "native")
        run.res["attention"] = {
            p.name: (p.seconds if p.ok else p.detail) for p in (probe[1] if probe else [])
        }
        run.res["attention_backend"] = run.backend
        self.log(f"attention probe: {run.res['attention']} -> {run.backend}")

    def save(self) -> str:
        """Write the tables and JSON so far: a run cut short by its timeout still leaves its numbers."""
        table = format_tables(self.results)
        if self.out:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "bench.json").write_text(json.dumps(self.results, indent=2, default=str))
            (self.out / "bench.md").write_text(table + "\n")
        return table

    def summarize(self, run: PresetRun) -> None:
        """Agreement with plain at equal steps, and the arms as plain data for the tables and the JSON."""
        arms, x0 = run.arms, run.x0
        if "plain" in arms:
            base = arms["plain"].latents
            for a in arms.values():
                if a.name in NO_CFG_ARMS:
                    a.note = "n/a (no CFG)"
                elif a.latents is not None and a is not arms["plain"]:
                    a.note = f"{rel_err(a.latents, base):.1e} / {rel_err(a.latents - x0, base - x0):.1e}"
        run.res["arms"] = {
            k: {
                "s_per_step": a.s_per_step,
                "steps": a.step_seconds,
                "peak_gib": a.peak_gib,
                "rel_err": a.note,
            }
            for k, a in arms.items()
        }
        self.save()

    # -- whole run -------------------------------------------------------------------------------------------
    def run(self) -> dict:
        env = {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if self.device.type == "cuda" else "cpu",
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }
        try:
            import diffusers
            import transformers

            env.update(diffusers=diffusers.__version__, transformers=transformers.__version__)
        except ImportError:
            pass
        self.results["env"] = env
        self.log(f"env: {env}")
        peak = self.measure_peak()
        self.results["peak_tflops"] = peak
        tokenizer = wan_build.build_tokenizer()
        name = "tiny" if self.args.tiny else "umt5-xxl"
        self.reset_peak()
        text_encoder, build_s = self.timed(
            lambda: wan_build.build_text_encoder(name, self.device, self.dtype, len(tokenizer))
        )
        self.results["text_encoder_build_s"] = build_s
        self.log(f"built text encoder {name} in {build_s:.1f}s ({self.peak_gib():.1f} GiB)")
        for preset in self.args.presets:
            if self.budget.left() < 20:
                self.log(f"SKIP preset {preset}: {self.budget.left():.0f}s left")
                continue
            self.guarded(
                f"preset {preset}", lambda p=preset: self.bench_preset(p, text_encoder, tokenizer, peak)
            )
            gc.collect()  # what the preset built goes with its frame, unless a deferred item holds it
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        for _, what, estimate, item in sorted(self.deferred, key=lambda d: d[0]):
            if self.budget.allows(what, estimate(), self.log):
                self.guarded(what, item)
                self.save()
        self.deferred.clear()
        return self.results


ARMS = (
    "plain",
    "framecast",
    "attn",
    "cfg-batch",
    "uniform-t",
    "no-cfg",
    "fp8",
    "turbo",
    "+compile",
    "+compile+fp8",
)


def _arm_list(value: str) -> tuple[str, ...]:
    arms = tuple(a.strip() for a in value.split(",") if a.strip())
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise argparse.ArgumentTypeError(f"unknown arms {unknown}; choose from {','.join(ARMS)}")
    return arms


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU (tests and CI)")
    parser.add_argument("--presets", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bf16 on CUDA, fp32 tiny")
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--timed-steps", type=int, default=3)
    parser.add_argument("--budget-seconds", type=float, default=300.0)
    parser.add_argument(
        "--compile", action="store_true", help="also time the framecast arm after regional compile"
    )
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument(
        "--compile-mode",
        help="torch.compile mode: default, max-autotune-no-cudagraphs (autotuned GEMMs), reduce-overhead or "
        "max-autotune (with CUDA graphs)",
    )
    parser.add_argument("--compile-presets", nargs="+", default=["wan2.2-ti2v-5b"], choices=list(CASES))
    parser.add_argument(
        "--compile-estimate", type=float, default=120.0, help="seconds a cold compile may take"
    )
    parser.add_argument(
        "--arms",
        type=_arm_list,
        help=f"comma-separated arms to run (default: all): {','.join(ARMS)}; +compile also needs --compile",
    )
    parser.add_argument(
        "--no-extras",
        dest="extras",
        action="store_false",
        help="skip the flop count, fp32 decode and channels-last decode (the bf16 decode still runs)",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        help="instead: one request on 1, 2, 4, 8 ranks up to this many (bench/gpu_ranks.py, its own flags; "
        "with --tiny on CPU gloo ranks)",
    )
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for bench.json and the log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--gpus" or a.startswith("--gpus=") for a in argv):
        from bench import (
            gpu_ranks,
        )  # issue 13's scaling bench, with its own flags (--preset, --steps, --layout)

        gpu_ranks.main(argv)
        return {}
    args = parse_args(argv)
    torch.manual_seed(0)
    bench = Bench(args)
    results = bench.run()
    table = bench.save()
    print("\n" + table, flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
