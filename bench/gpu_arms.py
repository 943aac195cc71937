"""The arms of bench/gpu_bench.py: each a way of running the same denoising steps, timed and kept."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

import torch

from bench.gpu_model import FULL, PROMPT, Arm, PresetRun, latent_tokens_of, rel_err
from framecast.engine import presets
from framecast.engine.families.wan import WanFamily
from framecast.engine.families.wan import build as wan_build
from framecast.engine.families.wan import loop as wan_loop
from framecast.engine.planning import make_plan
from framecast.engine.speed import attention, fp8
from framecast.engine.speed import vae as vae_lever
from framecast.engine.speed.compile import compile_transformer
from framecast.schema import TextToVideoInput


class ArmsMixin:
    """The arms and measured extras of one preset; ``Bench`` supplies the plumbing (timed, log, budget, ...)."""

    def steps_total(self) -> int:
        return self.args.warmup_steps + self.args.timed_steps

    def start_clock(self) -> list[float]:
        """Step timestamps, starting now (after a sync); ``stamp`` adds one per finished step."""
        self.reset_peak()
        self.sync()
        return [time.perf_counter()]

    def stamp(self, stamps: list[float]) -> None:
        self.sync()
        stamps.append(time.perf_counter())

    def stop_clock(self, arm: Arm, stamps: list[float]) -> Arm:
        """The timed steps (after the warm-up ones) and the peak memory, into ``arm``."""
        intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        arm.step_seconds = intervals[self.args.warmup_steps :]
        arm.peak_gib = self.peak_gib()
        return arm

    def run_plain(self, run: PresetRun, name: str) -> Arm:
        """WanPipeline.__call__, stopped after warm-up + timed steps through its own interrupt flag."""
        case = run.case

        def on_step_end(p, i, t, kwargs):
            self.stamp(stamps)
            if len(stamps) > self.steps_total():  # stamps[0] is the start
                p._interrupt = True
            return kwargs

        # stamps[0] is before the call (it includes text encoding), so the first interval is warm-up anyway.
        stamps = self.start_clock()
        out = run.pipe(
            prompt=PROMPT,
            negative_prompt=case.negative_prompt,
            height=case.height,
            width=case.width,
            num_frames=case.frames,
            num_inference_steps=case.steps,
            guidance_scale=case.guidance,
            latents=run.x0.clone(),
            output_type="latent",
            max_sequence_length=case.text_tokens,
            callback_on_step_end=on_step_end,
        )
        arm = self.stop_clock(Arm(name), stamps)
        arm.latents = out.frames
        return arm

    def run_loop(self, run: PresetRun, options: wan_loop.LoopOptions, name: str, cfg: bool = True) -> Arm:
        """wan_loop.denoise for warm-up + timed steps; ``cfg=False`` drops the negative prompt (one forward)."""
        case = run.case
        embeds = run.embeds if cfg else (run.embeds[0], None)
        stamps = self.start_clock()
        latents = wan_loop.denoise(
            run.pipe,
            prompt_embeds=embeds[0],
            negative_prompt_embeds=embeds[1],
            height=case.height,
            width=case.width,
            num_frames=case.frames,
            num_inference_steps=case.steps,
            guidance_scale=case.guidance,
            latents=run.x0.clone(),
            options=options,
            on_step=lambda i, total, latents: self.stamp(stamps),
            max_steps=self.steps_total(),
        )
        arm = self.stop_clock(Arm(name), stamps)
        arm.latents = latents
        return arm

    @contextlib.contextmanager
    def levers(self, run: PresetRun, *, probed: bool = True, fp8_linears: bool = False):
        """The engine's transformer-side levers (the probed attention backend; FP8 when asked) on the shared
        transformer for one arm, undone afterwards."""
        if probed:
            attention.set_attention_backend(run.transformer, run.backend)
        if fp8_linears:
            run.res["fp8_layers"] = fp8.quantize_linears(run.transformer)
        try:
            yield
        finally:
            if fp8_linears:
                fp8.restore_linears(run.transformer)
            attention.set_attention_backend(run.transformer, "native")

    def arm(self, run: PresetRun, arm_name: str, fn: Callable[[], Arm]) -> None:
        """Run one arm if it was asked for and fits the budget; keep what it measured."""
        if self.args.arms is not None and arm_name not in self.args.arms:
            return
        if not self.budget.allows(
            f"{run.name} arm {arm_name}", run.arm_estimate(self.steps_total()), self.log
        ):
            return
        result = self.guarded(f"{run.name} arm {arm_name}", fn)
        if result is not None:
            run.arms[arm_name] = result
            self.log(f"{run.name} {arm_name}: {result.s_per_step:.3f} s/step, peak {result.peak_gib:.1f} GiB")
            self.summarize(run)  # keeps what was measured if a later item fails

    def framecast_arm(self, run: PresetRun, arm_name: str, *, fp8_linears: bool = False) -> Arm:
        with self.levers(run, fp8_linears=fp8_linears):
            return self.run_loop(run, FULL, arm_name)

    def core_arms(self, run: PresetRun) -> None:
        def alone(arm_name: str, fn, **levers) -> Callable[[], Arm]:
            def measured() -> Arm:
                with self.levers(run, **{"probed": False, **levers}):
                    return fn(arm_name)

            return measured

        self.arm(run, "plain", lambda: self.run_plain(run, "plain"))
        self.arm(run, "framecast", lambda: self.framecast_arm(run, "framecast"))
        if run.backend != "native":
            self.arm(run, "attn", alone("attn", lambda n: self.run_plain(run, n), probed=True))
        cfg_batch = wan_loop.LoopOptions(batched_cfg=True, uniform_timesteps=False)
        self.arm(run, "cfg-batch", alone("cfg-batch", lambda n: self.run_loop(run, cfg_batch, n)))
        if run.expand:
            uniform = wan_loop.LoopOptions(batched_cfg=False, uniform_timesteps=True)
            self.arm(run, "uniform-t", alone("uniform-t", lambda n: self.run_loop(run, uniform, n)))
        if any(v.base == run.name and v.guidance_scale == 1.0 for v in presets.VARIANTS.values()):
            # What a CFG-free distilled variant pays per step: one forward of batch 1.
            self.arm(
                run,
                "no-cfg",
                alone("no-cfg", lambda n: self.run_loop(run, FULL, n, cfg=False), probed=True),
            )
        if self.fp8_runs():
            self.arm(run, "fp8", lambda: self.framecast_arm(run, "fp8", fp8_linears=True))

    def fp8_runs(self) -> bool:
        """FP8 arms run on cards with FP8 GEMMs, and on the CPU (its emulation, for the tiny dry run)."""
        return self.device.type == "cpu" or fp8.fp8_matmul_supported(self.device)

    def count_flops(self, run: PresetRun) -> None:
        res = run.res
        if not self.budget.allows(f"{run.name} flop count", run.arm_estimate(1) + 2, self.log):
            return
        res["counted_tflop_per_step"] = self.guarded("flop count", lambda: self.count_step_flops(run))
        if res["counted_tflop_per_step"]:
            self.log(
                f"flop counter: {res['counted_tflop_per_step']:.4g} TFLOP/step "
                f"(analytic {res['analytic_tflop_per_step']:.4g})"
            )

    def decodes(self, run: PresetRun) -> None:
        """VAE decode of the framecast arm's latents: fp32 (plain's and the engine's), bf16, and channels-last."""
        res, name = run.res, run.name
        final = run.arms["framecast"].latents if "framecast" in run.arms else run.x0
        vae16 = wan_build.build_vae(run.cfg, self.device, self.dtype)
        pipe16 = wan_build.with_parts(run.pipe, vae=vae16)
        videos: dict[str, torch.Tensor] = {}
        estimate = 4 * run.est_step + 5

        def decode(key: str, pipe, latents: torch.Tensor, reference: str | None = None) -> None:
            self.reset_peak()
            video, res[f"decode_{key}_s"] = self.timed(lambda: wan_loop.decode(pipe, latents, "pt-raw"))
            res[f"decode_{key}_peak_gib"] = self.peak_gib()
            videos[key] = video
            if reference in videos:
                res[f"decode_{key}_vs_{reference}_rel_err"] = rel_err(video, videos[reference])
            self.log(f"{name} VAE decode {key}: {res[f'decode_{key}_s']:.2f}s")

        def channels_last(key: str, pipe, reference: str) -> None:
            vae_lever.channels_last_3d(pipe.vae)
            try:
                decode(key, pipe, final.contiguous(memory_format=torch.channels_last_3d), reference)
            finally:
                pipe.vae.to(memory_format=torch.contiguous_format)

        if self.budget.allows(f"{name} bf16 decode", estimate, self.log):
            self.guarded("bf16 decode", lambda: decode("bf16", pipe16, final))

        def fp32_decode() -> None:
            decode("fp32", run.pipe, final)
            if "bf16" in videos:
                res["decode_bf16_vs_fp32_rel_err"] = rel_err(videos["bf16"], videos["fp32"])

        # The fp32 decode is in both end-to-end figures; it runs after every preset's core arms.
        fp32_estimate = 3 * (res.get("decode_bf16_s") or estimate) + 5
        self.deferred.append((0, f"{name} fp32 decode", lambda: fp32_estimate, fp32_decode))
        if self.args.extras:
            self.deferred.append(
                (
                    3,
                    f"{name} bf16 channels-last decode",
                    lambda: fp32_estimate,
                    lambda: channels_last("bf16_cl3d", pipe16, "bf16"),
                )
            )
            self.deferred.append(
                (
                    3,
                    f"{name} fp32 channels-last decode",
                    lambda: fp32_estimate,
                    lambda: channels_last("fp32_cl3d", run.pipe, "fp32"),
                )
            )

    def turbo(self, run: PresetRun, label: str) -> None:
        """The DMD variant of this preset as a request runs it, through the engine's family (its latents, then
        its decode): prompt encode, its steps without CFG, fp32 decode; twice, the second timed (the first pays
        cuDNN's and the allocator's warm-up)."""
        variant = next((v for v in presets.VARIANTS.values() if v.base == run.name and v.dmd_timesteps), None)
        wanted = self.args.arms is None or "turbo" in self.args.arms
        if variant is None or not wanted:
            return
        estimate = (
            2
            * (
                variant.steps * run.arm_estimate(1) / 2
                + 3 * (run.res.get("decode_bf16_s") or 4 * run.est_step)
            )
            + 5
        )
        if not self.budget.allows(f"{run.name} {label}", estimate, self.log):
            return

        preset = presets.get_preset(variant.name)
        plan = make_plan(TextToVideoInput(prompt=PROMPT, seed=0), preset)
        case = run.case
        plan = dataclasses.replace(plan, gen_width=case.width, gen_height=case.height, gen_frames=case.frames)
        family = WanFamily(preset, variant)
        family.pipe = run.pipe

        def once() -> dict:
            pipe = run.pipe
            saved = pipe.scheduler
            pipe.scheduler = family.replaced_components()["scheduler"]
            try:
                with self.levers(run):
                    # The family encodes the prompt inside latents(); its encoder time is measured alone first.
                    _, text = self.timed(
                        lambda: wan_loop.encode_prompts(
                            pipe, PROMPT, "", guidance=False, device=self.device, max_sequence_length=512
                        )
                    )
                    latents, denoise = self.timed(lambda: family.latents(plan, None))
                    _, decode = self.timed(lambda: wan_loop.decode(pipe, latents, "pt-raw"))
            finally:
                pipe.scheduler = saved
            return {
                "text_s": text,
                "denoise_s": denoise - text,
                "decode_s": decode,
                "total_s": denoise + decode,
            }

        def measured() -> None:
            first, second = once(), once()
            run.res["turbo"][f"{variant.name} ({label})"] = {
                **second,
                "first_total_s": first["total_s"],
                "steps": variant.steps,
            }
            self.log(
                f"{run.name} {label}: {second['total_s']:.2f}s end to end (first run {first['total_s']:.2f}s)"
            )
            self.save()

        self.guarded(f"{run.name} {label}", measured)

    def defer_compile(self, run: PresetRun) -> None:
        wants = self.args.arms is None or any(a.startswith("+compile") for a in self.args.arms)
        if not (self.args.compile and wants and run.name in self.args.compile_presets):
            return

        def compiled(arm_name: str, fp8_linears: bool = False) -> Callable[[], Arm]:
            def measured() -> Arm:
                start = time.perf_counter()
                result = self.framecast_arm(run, arm_name, fp8_linears=fp8_linears)
                run.res[f"{arm_name}_first_steps_s"] = time.perf_counter() - start
                return result

            return measured

        def compile_arms() -> None:
            compile_transformer(
                run.transformer, backend=self.args.compile_backend, mode=self.args.compile_mode
            )
            self.arm(run, "+compile", compiled("+compile"))
            self.turbo(run, "turbo +compile")
            recompile = self.budget.allows(f"{run.name} +compile+fp8", self.args.compile_estimate, self.log)
            if self.fp8_runs() and recompile:
                self.arm(run, "+compile+fp8", compiled("+compile+fp8", fp8_linears=True))
            self.summarize(run)

        estimate = self.args.compile_estimate + run.arm_estimate(self.steps_total())
        self.deferred.append((1, f"{run.name} compile", lambda: estimate, compile_arms))

    def count_step_flops(self, run: PresetRun) -> float:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        transformer, x0, embeds, backend = run.transformer, run.x0, run.embeds, run.backend
        expand = run.pipe.config.expand_timesteps
        t = torch.tensor(999.0, device=self.device)
        timestep = t.expand(2)
        if expand:
            timestep = torch.full((2, latent_tokens_of(x0, transformer)), 999.0, device=self.device)
        x = torch.cat([x0, x0]).to(self.dtype)
        context = torch.cat(embeds).to(self.dtype)
        counter = FlopCounterMode(display=False)
        # CPU SDPA runs a fused kernel flop_counter does not know; the math path is counted op by op.
        kernel = sdpa_kernel([SDPBackend.MATH]) if self.device.type == "cpu" else contextlib.nullcontext()
        attention.set_attention_backend(transformer, "native" if self.device.type == "cpu" else backend)
        try:
            with counter, kernel, torch.no_grad():
                transformer(x, timestep, context, return_dict=False)
        finally:
            attention.set_attention_backend(transformer, "native")
        return counter.get_total_flops() / 1e12
