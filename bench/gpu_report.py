"""The tables ``bench/gpu_bench.py`` prints and saves, from its results (plain data, also in bench.json)."""

from __future__ import annotations

# Arms that run without CFG: one transformer forward per step instead of two.
NO_CFG_ARMS = ("no-cfg",)
# Arms whose step time is Framecast's at equal steps (exact levers only; FP8 changes the result).
EXACT_FRAMECAST_ARMS = ("framecast", "+compile")


def format_tables(results: dict) -> str:
    lines = _header(results)
    for name, res in results.get("presets", {}).items():
        lines += _arm_rows(name, res, results.get("peak_tflops") or float("nan"))
    lines += [
        "",
        "| preset | text enc plain / fc (s) | VAE decode fp32 / bf16 / bf16 NDHWC / fp32 NDHWC (s) | "
        "bf16 vs fp32 decode rel err | end-to-end plain / framecast (s, extrapolated) | speed-up | "
        "TFLOP/step analytic / counted | build transformer / VAE (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, res in results.get("presets", {}).items():
        lines += _summary_rows(name, res)
    if results.get("skipped"):
        lines += ["", "skipped: " + "; ".join(results["skipped"])]
    if results.get("errors"):
        lines += ["errors (tracebacks in the log): " + "; ".join(results["errors"])]
    return "\n".join(lines)


def _header(results: dict) -> list[str]:
    peak = results.get("peak_tflops") or float("nan")
    env = results.get("env", {})
    return [
        f"card: {env.get('device')}; torch {env.get('torch')}, diffusers {env.get('diffusers')}, "
        f"transformers {env.get('transformers')}; measured bf16 matmul peak {peak:.0f} TFLOP/s; "
        f"{env.get('date')}",
        "s/step: median of the timed steps after warm-up (CFG on: 2 transformer forwards' worth per step, "
        "except no-cfg). DiT TFLOP/s: analytic FLOPs of the plain pipeline's step / s/step.",
        "rel err vs plain at equal steps: latents / update (latents - initial noise).",
        "",
        "| preset | arm | s/step | speed-up | DiT TFLOP/s (analytic) | % of peak | peak GiB | rel err vs plain |",
        "|---|---|---|---|---|---|---|---|",
    ]


def _arm_rows(name: str, res: dict, peak: float) -> list[str]:
    arms = res.get("arms", {})
    base = arms.get("plain", {}).get("s_per_step")
    rows = []
    for arm_name, a in arms.items():
        sps = a["s_per_step"]
        forwards = 1 if arm_name in NO_CFG_ARMS else 2  # the analytic count is per step with CFG
        tflops = (
            res["analytic_tflop_per_step"] * forwards / 2 / sps if sps == sps and sps > 0 else float("nan")
        )
        speed = f"{base / sps:.2f}x" if base and sps == sps else "-"
        rows.append(
            f"| {name} | {arm_name} | {sps:.3f} | {speed} | {tflops:.0f} | {100 * tflops / peak:.0f}% | "
            f"{a['peak_gib']:.1f} | {a['rel_err'] or '-'} |"
        )
    return rows


def end_to_end(res: dict) -> tuple[float | None, float | None]:
    """One request at the preset's default steps, plain and Framecast: text encode + steps + VAE decode.

    Both decode as the engine does, with the fp32 VAE (Wan's authors' choice; bf16 decode is measured but is not
    what the engine runs), so the speed-up is the denoising levers' own. Framecast's steps are its fastest exact
    arm (FP8 changes the result and is reported separately).
    """
    arms, steps = res.get("arms", {}), res["case"]["steps"]
    decode = res.get("decode_fp32_s")
    plain = framecast = None
    if "plain" in arms and decode and "text_encode_plain_s" in res:
        plain = res["text_encode_plain_s"] + steps * arms["plain"]["s_per_step"] + decode
    best = min((a["s_per_step"] for k, a in arms.items() if k in EXACT_FRAMECAST_ARMS), default=None)
    if best and decode and "text_encode_framecast_s" in res:
        framecast = res["text_encode_framecast_s"] + steps * best + decode
    return plain, framecast


def _summary_rows(name: str, res: dict) -> list[str]:
    plain_e2e, fc_e2e = end_to_end(res)
    speed = f"{plain_e2e / fc_e2e:.2f}x" if plain_e2e and fc_e2e else "-"
    counted = res.get("counted_tflop_per_step")
    decodes = " / ".join(
        _f(res.get(k)) for k in ("decode_fp32_s", "decode_bf16_s", "decode_bf16_cl3d_s", "decode_fp32_cl3d_s")
    )
    rows = [
        f"| {name} | {_f(res.get('text_encode_plain_s'), '.3f')} / "
        f"{_f(res.get('text_encode_framecast_s'), '.3f')} | {decodes} | "
        f"{_f(res.get('decode_bf16_vs_fp32_rel_err'), '.1e')} | "
        f"{_f(plain_e2e, '.1f')} / {_f(fc_e2e, '.1f')} ({res['case']['steps']} steps) | {speed} | "
        f"{res['analytic_tflop_per_step']:.4g} / {_f(counted, '.4g')} | "
        f"{res['build_s'].get('transformer', 0):.1f} / {res['build_s'].get('vae', 0):.1f} |"
    ]
    bf16_decode = res.get("decode_bf16_cl3d_s") or res.get("decode_bf16_s")
    for label, turbo in res.get("turbo", {}).items():
        with_bf16 = ""
        if bf16_decode:  # FRAMECAST_VAE_DTYPE=bfloat16: the same request with the bf16 decode measured above
            with_bf16 = f"; {turbo['text_s'] + turbo['denoise_s'] + bf16_decode:.1f} s with the bf16 VAE"
        rows.append(
            f"|  | {label}: {turbo['steps']} DMD steps, no CFG, measured end to end: "
            f"**{turbo['total_s']:.1f} s** (text {turbo['text_s']:.2f} + steps {turbo['denoise_s']:.2f} + "
            f"decode {turbo['decode_s']:.2f}; first run {turbo['first_total_s']:.1f} s{with_bf16}) |||||||"
        )
    if "attention" in res:
        probes = ", ".join(
            f"{k}={_f(v, '.4f') if isinstance(v, float) else 'n/a'}" for k, v in res["attention"].items()
        )
        rows.append(f"|  | attention probe ({res['attention_backend']} chosen): {probes} |||||||")
    if "fp8_layers" in res:
        rows.append(f"|  | fp8: {res['fp8_layers']} linear layers in e4m3 (per-row scales) |||||||")
    return rows


def _f(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)
