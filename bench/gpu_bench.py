"""Issue 6: plain diffusers against Framecast's path, same card, same model, same steps, in one process.

Full-size Wan transformers, VAEs and the umT5-XXL text encoder with random weights in bf16 (configs from
framecast/engine/configs/), built directly on the GPU. Arms, each timed over a few denoising steps after a
warm-up and extrapolated to the preset's default step count:

  plain      WanPipeline.__call__ as diffusers' docs show it: default attention, its own CFG loop (two
             forwards of batch 1 per step), fp32 VAE
  attn       the same loop with the fastest attention backend that passes the probe (accel)
  cfg-batch  wan_loop: conditional and unconditional rows in one forward of batch 2, default attention
  uniform-t  wan_loop: one timestep per row instead of per token (TI2V only), sequential CFG
  no-cfg     framecast's step without guidance: what a CFG-free distilled variant pays (presets.VARIANTS)
  fuse-qkv   the pipeline's own loop with fused QKV projections (accel.fuse_qkv)
  framecast  wan_loop with attn + cfg-batch + uniform-t + fuse-qkv, bf16 VAE, cached negative embeddings
  +compile   framecast after compile_repeated_blocks (with --compile; first-steps time reported)

``--arms plain,framecast,+compile`` runs only those arms; ``--no-extras`` skips the flop count, the fp32 decode and
the channels-last decode (a narrowed rerun).

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
import contextlib
import gc
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench import randmodels
from framecast.engine import accel, presets, wan_loop

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


class Bench:
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
    def steps_total(self) -> int:
        return self.args.warmup_steps + self.args.timed_steps

    def run_plain(self, pipe, case: Case, x0: torch.Tensor, name: str) -> Arm:
        """WanPipeline.__call__, stopped after warm-up + timed steps through its own interrupt flag."""
        arm = Arm(name)
        stamps: list[float] = []

        def on_step_end(p, i, t, kwargs):
            self.sync()
            stamps.append(time.perf_counter())
            if len(stamps) > self.steps_total():  # stamps[0] is the start
                p._interrupt = True
            return kwargs

        self.reset_peak()
        self.sync()
        stamps.append(time.perf_counter())
        out = pipe(
            prompt=PROMPT,
            negative_prompt=case.negative_prompt,
            height=case.height,
            width=case.width,
            num_frames=case.frames,
            num_inference_steps=case.steps,
            guidance_scale=case.guidance,
            latents=x0.clone(),
            output_type="latent",
            max_sequence_length=case.text_tokens,
            callback_on_step_end=on_step_end,
        )
        # stamps[0] is before the call (it includes text encoding), so the first interval is warm-up anyway.
        intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        arm.step_seconds = intervals[self.args.warmup_steps :]
        arm.peak_gib = self.peak_gib()
        arm.latents = out.frames
        return arm

    def run_loop(self, pipe, case, x0, embeds, options: wan_loop.LoopOptions, name: str) -> Arm:
        arm = Arm(name)
        stamps: list[float] = []

        def on_step(i, total, latents):
            self.sync()
            stamps.append(time.perf_counter())

        self.reset_peak()
        self.sync()
        stamps.append(time.perf_counter())
        arm.latents = wan_loop.denoise(
            pipe,
            prompt_embeds=embeds[0],
            negative_prompt_embeds=embeds[1],
            height=case.height,
            width=case.width,
            num_frames=case.frames,
            num_inference_steps=case.steps,
            guidance_scale=case.guidance,
            latents=x0.clone(),
            options=options,
            on_step=on_step,
            max_steps=self.steps_total(),
        )
        intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        arm.step_seconds = intervals[self.args.warmup_steps :]
        arm.peak_gib = self.peak_gib()
        return arm

    # -- one preset ------------------------------------------------------------------------------------------
    def bench_preset(self, name: str, text_encoder, tokenizer, peak_tflops: float) -> None:
        cfg = randmodels.tiny_config(name) if self.args.tiny else randmodels.load_config(name)
        case = (TINY_CASES if self.args.tiny else CASES)[name]
        res: dict = {"case": case.__dict__, "arms": {}, "build_s": {}}
        self.results["presets"][name] = res
        tokens = latent_tokens(cfg, case)
        expand = cfg["pipeline"]["expand_timesteps"]
        step_flops = 2 * dit_flops(cfg, tokens, case.text_tokens, per_token_time=expand)
        res["tokens"], res["analytic_tflop_per_step"] = tokens, step_flops / 1e12
        # Until a step is measured, assume 40% of peak to decide what fits.
        est_step = step_flops / (0.4 * peak_tflops * 1e12)
        self.log(
            f"== {name}: {case.width}x{case.height}x{case.frames}, {tokens} tokens, "
            f"{step_flops / 1e12:.4g} TFLOP/step (analytic)"
        )

        # 1. Build (on the device, random weights)
        transformer, res["build_s"]["transformer"] = self.timed(
            lambda: randmodels.build_transformer(cfg, self.device, self.dtype)
        )
        vae32, res["build_s"]["vae"] = self.timed(
            lambda: randmodels.build_vae(cfg, self.device, torch.float32)
        )
        plain = randmodels.build_pipeline(
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
        plain.set_progress_bar_config(disable=True)
        self.log(
            f"built transformer in {res['build_s']['transformer']:.1f}s, VAE in {res['build_s']['vae']:.1f}s"
        )
        gen = torch.Generator(device="cpu").manual_seed(0)
        x0 = plain.prepare_latents(
            1,
            cfg["transformer"]["in_channels"],
            case.height,
            case.width,
            case.frames,
            torch.float32,
            torch.device("cpu"),
            gen,
        ).to(self.device)

        # 2. Text encoding: plain encodes prompt and negative every request; framecast caches the negative
        cache = wan_loop.NegativePromptCache()

        def encode_plain():
            return plain.encode_prompt(
                PROMPT,
                case.negative_prompt,
                do_classifier_free_guidance=True,
                device=self.device,
                max_sequence_length=case.text_tokens,
            )

        def encode_framecast():
            return wan_loop.encode_prompts(
                plain,
                PROMPT,
                case.negative_prompt,
                guidance=True,
                device=self.device,
                max_sequence_length=case.text_tokens,
                negative_cache=cache,
            )

        encode_plain()  # warm-up
        embeds, _ = self.timed(encode_framecast)  # fills the cache, as a worker does at start
        _, res["text_encode_plain_s"] = self.timed(encode_plain)
        embeds, res["text_encode_framecast_s"] = self.timed(encode_framecast)
        self.log(
            f"text encode: plain {res['text_encode_plain_s']:.3f}s, "
            f"framecast {res['text_encode_framecast_s']:.3f}s"
        )

        # 3. Attention backends at this preset's self-attention shape
        t = cfg["transformer"]
        shape = (2, tokens, t["num_attention_heads"], t["attention_head_dim"])
        probe = self.guarded(
            "attention probe", lambda: accel.use_fastest_attention([transformer], time_shape=shape)
        )
        backend = probe[0] if probe else "native"
        accel.set_attention_backend(transformer, "native")
        res["attention"] = {p.name: (p.seconds if p.ok else p.detail) for p in (probe[1] if probe else [])}
        res["attention_backend"] = backend
        self.log(f"attention probe: {res['attention']} -> {backend}")

        # 4. Arms, most important first
        arms: dict[str, Arm] = {}
        n_steps = self.steps_total()

        def est() -> float:
            measured = [a.s_per_step for a in arms.values() if a.step_seconds]
            return (min(measured) if measured else est_step) * n_steps * 1.3 + 2

        def arm(arm_name: str, fn) -> None:
            if self.args.arms is not None and arm_name not in self.args.arms:
                return
            if not self.budget.allows(f"{name} arm {arm_name}", est(), self.log):
                return
            result = self.guarded(f"{name} arm {arm_name}", fn)
            if result is not None:
                arms[arm_name] = result
                self.log(f"{name} {arm_name}: {result.s_per_step:.3f} s/step, peak {result.peak_gib:.1f} GiB")
                self.summarize(res, arms, x0)  # keeps what was measured if a later item fails

        full = wan_loop.LoopOptions(batched_cfg=True, uniform_timesteps=True)
        arm("plain", lambda: self.run_plain(plain, case, x0, "plain"))

        def framecast_arm(arm_name: str = "framecast") -> Arm:
            accel.set_attention_backend(transformer, backend)
            accel.fuse_qkv(transformer)
            try:
                return self.run_loop(plain, case, x0, embeds, full, arm_name)
            finally:
                accel.fuse_qkv(transformer, on=False)
                accel.set_attention_backend(transformer, "native")

        arm("framecast", framecast_arm)

        def attention_only() -> Arm:
            accel.set_attention_backend(transformer, backend)
            try:
                return self.run_plain(plain, case, x0, "attn")
            finally:
                accel.set_attention_backend(transformer, "native")

        if backend != "native":
            arm("attn", attention_only)
        arm(
            "cfg-batch",
            lambda: self.run_loop(
                plain,
                case,
                x0,
                embeds,
                wan_loop.LoopOptions(batched_cfg=True, uniform_timesteps=False),
                "cfg-batch",
            ),
        )
        if expand:
            arm(
                "uniform-t",
                lambda: self.run_loop(
                    plain,
                    case,
                    x0,
                    embeds,
                    wan_loop.LoopOptions(batched_cfg=False, uniform_timesteps=True),
                    "uniform-t",
                ),
            )

        def no_cfg_arm() -> Arm:
            # What a CFG-free distilled variant (presets.VARIANTS) pays per step: one forward of batch 1.
            accel.set_attention_backend(transformer, backend)
            try:
                return self.run_loop(plain, case, x0, (embeds[0], None), full, "no-cfg")
            finally:
                accel.set_attention_backend(transformer, "native")

        if any(v.base == name and v.guidance_scale == 1.0 for v in presets.VARIANTS.values()):
            arm("no-cfg", no_cfg_arm)

        def fused_only() -> Arm:
            accel.fuse_qkv(transformer)
            try:
                return self.run_plain(plain, case, x0, "fuse-qkv")
            finally:
                accel.fuse_qkv(transformer, on=False)

        arm("fuse-qkv", fused_only)

        # 5. FLOPs of one batched forward, counted by torch
        if self.args.extras and self.budget.allows(f"{name} flop count", est() / n_steps + 2, self.log):
            res["counted_tflop_per_step"] = self.guarded(
                "flop count", lambda: self.count_step_flops(plain, case, x0, embeds, backend)
            )
            if res["counted_tflop_per_step"]:
                self.log(
                    f"flop counter: {res['counted_tflop_per_step']:.4g} TFLOP/step "
                    f"(analytic {step_flops / 1e12:.4g})"
                )

        # 6. VAE decode: framecast bf16, plain fp32 (as diffusers' docs load it), and how far apart they are
        final = arms["framecast"].latents if "framecast" in arms else x0
        vae16 = randmodels.build_vae(cfg, self.device, self.dtype)
        fc_pipe = randmodels.with_parts(plain, vae=vae16)
        video16 = None
        if self.budget.allows(f"{name} bf16 decode", 4 * est_step + 5, self.log):
            self.reset_peak()
            video16, res["decode_bf16_s"] = self.guarded(
                "bf16 decode",
                lambda: self.timed(lambda: wan_loop.decode_latents(fc_pipe, final, "pt-raw")),
                (None, None),
            )
            res["decode_bf16_peak_gib"] = self.peak_gib()
            self.log(
                f"{name} VAE decode bf16: {res['decode_bf16_s']}s, peak {res['decode_bf16_peak_gib']:.1f} GiB"
            )

        def decode_fp32() -> None:
            self.reset_peak()
            video32, res["decode_fp32_s"] = self.guarded(
                "fp32 decode",
                lambda: self.timed(lambda: wan_loop.decode_latents(plain, final, "pt-raw")),
                (None, None),
            )
            res["decode_fp32_peak_gib"] = self.peak_gib()
            if video16 is not None and video32 is not None:
                res["decode_bf16_vs_fp32_rel_err"] = rel_err(video16, video32)
            self.log(
                f"{name} VAE decode fp32: {res['decode_fp32_s']}s, bf16 vs fp32 rel err "
                f"{res.get('decode_bf16_vs_fp32_rel_err')}"
            )

        # The fp32 decode only serves the plain arm's end-to-end figure: after every preset's core arms.
        fp32_estimate = 3 * (res.get("decode_bf16_s") or 4 * est_step) + 5
        if self.args.extras:
            self.deferred.append((0, f"{name} fp32 decode", lambda: fp32_estimate, decode_fp32))

        def decode_channels_last() -> None:
            accel.channels_last_3d(vae16)
            self.reset_peak()
            video, res["decode_bf16_cl3d_s"] = self.timed(
                lambda: wan_loop.decode_latents(
                    fc_pipe, final.contiguous(memory_format=torch.channels_last_3d), "pt-raw"
                )
            )
            res["decode_bf16_cl3d_peak_gib"] = self.peak_gib()
            if video16 is not None:
                res["decode_cl3d_vs_bf16_rel_err"] = rel_err(video, video16)
            self.log(
                f"{name} VAE decode bf16 channels-last: {res['decode_bf16_cl3d_s']:.2f}s, rel err vs "
                f"bf16 {res.get('decode_cl3d_vs_bf16_rel_err')}"
            )

        bf16_estimate = (res.get("decode_bf16_s") or 4 * est_step) * 1.5 + 5
        if self.args.extras:
            self.deferred.append(
                (2, f"{name} channels-last decode", lambda: bf16_estimate, decode_channels_last)
            )

        # 7. Optional: regional compile, deferred until every preset has had its core arms (it can take
        # minutes cold, and it changes the transformer in place)
        wants_compile = self.args.arms is None or "+compile" in self.args.arms
        if self.args.compile and wants_compile and name in self.args.compile_presets:

            def compiled() -> Arm:
                accel.compile_transformer(transformer, backend=self.args.compile_backend)
                start = time.perf_counter()
                result = framecast_arm("+compile")
                res["compile_first_steps_s"] = time.perf_counter() - start
                return result

            def deferred() -> None:
                arm("+compile", compiled)
                self.summarize(res, arms, x0)

            self.deferred.append((1, f"{name} compile", lambda: self.args.compile_estimate + est(), deferred))
        self.summarize(res, arms, x0)

    def save(self) -> str:
        """Write the tables and JSON so far: a run cut short by its timeout still leaves its numbers."""
        table = format_tables(self.results)
        if self.out:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "bench.json").write_text(json.dumps(self.results, indent=2, default=str))
            (self.out / "bench.md").write_text(table + "\n")
        return table

    def summarize(self, res: dict, arms: dict[str, Arm], x0: torch.Tensor) -> None:
        """Agreement with plain at equal steps, and the arms as plain data for the tables and the JSON."""
        if "plain" in arms:
            base = arms["plain"].latents
            for a in arms.values():
                if a.name == "no-cfg":
                    a.note = "n/a (no CFG)"
                elif a.latents is not None and a is not arms["plain"]:
                    a.note = f"{rel_err(a.latents, base):.1e} / {rel_err(a.latents - x0, base - x0):.1e}"
        res["arms"] = {
            k: {
                "s_per_step": a.s_per_step,
                "steps": a.step_seconds,
                "peak_gib": a.peak_gib,
                "rel_err": a.note,
            }
            for k, a in arms.items()
        }
        self.save()

    def count_step_flops(self, pipe, case, x0, embeds, backend) -> float:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        transformer = pipe.transformer
        expand = pipe.config.expand_timesteps
        t = torch.tensor(999.0, device=self.device)
        timestep = t.expand(2)
        if expand:
            timestep = torch.full((2, latent_tokens_of(x0, transformer)), 999.0, device=self.device)
        x = torch.cat([x0, x0]).to(self.dtype)
        context = torch.cat(embeds).to(self.dtype)
        counter = FlopCounterMode(display=False)
        # CPU SDPA runs a fused kernel flop_counter does not know; the math path is counted op by op.
        kernel = sdpa_kernel([SDPBackend.MATH]) if self.device.type == "cpu" else contextlib.nullcontext()
        accel.set_attention_backend(transformer, "native" if self.device.type == "cpu" else backend)
        try:
            with counter, kernel, torch.no_grad():
                transformer(x, timestep, context, return_dict=False)
        finally:
            accel.set_attention_backend(transformer, "native")
        return counter.get_total_flops() / 1e12

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
        tokenizer = randmodels.build_tokenizer()
        name = "tiny" if self.args.tiny else "umt5-xxl"
        self.reset_peak()
        text_encoder, build_s = self.timed(
            lambda: randmodels.build_text_encoder(name, self.device, self.dtype, len(tokenizer))
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


def latent_tokens_of(latents: torch.Tensor, transformer) -> int:
    p = transformer.config.patch_size
    return (latents.shape[2] // p[0]) * (latents.shape[3] // p[1]) * (latents.shape[4] // p[2])


def format_tables(results: dict) -> str:
    peak = results.get("peak_tflops") or float("nan")
    env = results.get("env", {})
    lines = [
        f"card: {env.get('device')}; torch {env.get('torch')}, diffusers {env.get('diffusers')}, "
        f"transformers {env.get('transformers')}; measured bf16 matmul peak {peak:.0f} TFLOP/s; "
        f"{env.get('date')}",
        "s/step: median of the timed steps after warm-up (CFG on: 2 transformer forwards' worth per step, "
        "except no-cfg). DiT TFLOP/s: analytic FLOPs of the plain pipeline's step / s/step.",
        "rel err vs plain at equal steps: latents / update (latents - initial noise).",
        "",
        "| preset | arm | s/step | speed-up | DiT TFLOP/s (analytic) | % of peak | peak GiB "
        "| rel err vs plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.get("presets", {}).items():
        arms = res.get("arms", {})
        base = arms.get("plain", {}).get("s_per_step")
        for arm_name, a in arms.items():
            sps = a["s_per_step"]
            forwards = 1 if arm_name == "no-cfg" else 2  # the analytic count is per step with CFG
            work = res["analytic_tflop_per_step"] * forwards / 2
            tflops = work / sps if sps == sps and sps > 0 else float("nan")
            speed = f"{base / sps:.2f}x" if base and sps == sps else "-"
            lines.append(
                f"| {name} | {arm_name} | {sps:.3f} | {speed} | {tflops:.0f} | {100 * tflops / peak:.0f}% | "
                f"{a['peak_gib']:.1f} | {a['rel_err'] or '-'} |"
            )
    lines += [
        "",
        "| preset | text enc plain / fc (s) | VAE decode fp32 / bf16 / bf16 NDHWC (s) | "
        "bf16 vs fp32 decode rel err | "
        "end-to-end plain / framecast (s, extrapolated) | speed-up | TFLOP/step analytic / counted | "
        "build transformer / VAE (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.get("presets", {}).items():
        arms, steps = res.get("arms", {}), res["case"]["steps"]
        plain_e2e = fc_e2e = None
        dec32, dec16 = res.get("decode_fp32_s"), res.get("decode_bf16_s")
        dec_fc = min(d for d in (dec16, res.get("decode_bf16_cl3d_s")) if d) if dec16 else None
        if "plain" in arms and (dec32 or dec16) and "text_encode_plain_s" in res:
            plain_e2e = res["text_encode_plain_s"] + steps * arms["plain"]["s_per_step"] + (dec32 or dec16)
        best = min((a["s_per_step"] for k, a in arms.items() if k in ("framecast", "+compile")), default=None)
        if best and dec16 and "text_encode_framecast_s" in res:
            fc_e2e = res["text_encode_framecast_s"] + steps * best + dec_fc
        speed = f"{plain_e2e / fc_e2e:.2f}x" if plain_e2e and fc_e2e else "-"
        counted = res.get("counted_tflop_per_step")
        lines.append(
            f"| {name} | {_f(res.get('text_encode_plain_s'), '.3f')} / "
            f"{_f(res.get('text_encode_framecast_s'), '.3f')} | "
            f"{_f(dec32)} / {_f(dec16)} / {_f(res.get('decode_bf16_cl3d_s'))} | "
            f"{_f(res.get('decode_bf16_vs_fp32_rel_err'), '.1e')} | "
            f"{_f(plain_e2e, '.1f')} / {_f(fc_e2e, '.1f')} ({steps} steps) | {speed} | "
            f"{res['analytic_tflop_per_step']:.4g} / {_f(counted, '.4g')} | "
            f"{res['build_s'].get('transformer', 0):.1f} / {res['build_s'].get('vae', 0):.1f} |"
        )
        for variant in presets.VARIANTS.values():
            no_cfg, dec = arms.get("no-cfg", {}).get("s_per_step"), res.get("decode_bf16_s")
            if variant.base == name and variant.guidance_scale == 1.0 and no_cfg and dec:
                turbo = res["text_encode_framecast_s"] + variant.steps * no_cfg + dec
                lines.append(
                    f"|  | {variant.name} ({variant.steps} steps, no CFG, extrapolated): "
                    f"{turbo:.1f} s end to end |||||||"
                )
        if "attention" in res:
            lines.append(
                f"|  | attention probe ({res['attention_backend']} chosen): "
                + ", ".join(
                    f"{k}={_f(v, '.4f') if isinstance(v, float) else 'n/a'}"
                    for k, v in res["attention"].items()
                )
                + " |||||||"
            )
    if results.get("skipped"):
        lines += ["", "skipped: " + "; ".join(results["skipped"])]
    if results.get("errors"):
        lines += ["errors (tracebacks in the log): " + "; ".join(results["errors"])]
    return "\n".join(lines)


def _f(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


ARMS = ("plain", "framecast", "attn", "cfg-batch", "uniform-t", "no-cfg", "fuse-qkv", "+compile")


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
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for bench.json and the log")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.manual_seed(0)
    bench = Bench(args)
    results = bench.run()
    table = bench.save()
    print("\n" + table, flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
