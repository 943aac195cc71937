"""Issue 3's GPU check: each real preset's transformer(s) and VAE at full size, random weights, bf16, CUDA.

Per preset: 2 denoising steps of ``WanPipeline`` at the preset's native size with classifier-free guidance
(random text embeddings stand in for umT5, which does not change the transformer's work), then one VAE decode
of the latents; it prints seconds per step (step 1 includes kernel selection and warm-up), decode time and
peak memory. ``--tiny`` runs the same code on the CPU with tiny models (what tests and CI run).

wan2.2-t2v-a14b runs at 832x480 (its 480p size) to fit the call's time; both experts are built, as a real
load holds them. LTX-2's transformer is called directly with random inputs (``smoke_ltx2``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from framecast.engine.families.ltx2 import build as ltx2_build
from framecast.engine.families.wan import build as wan_build
from framecast.engine.families.wan import loop as wan_loop


@dataclass(frozen=True)
class Size:
    width: int
    height: int
    frames: int


SIZES = {
    "wan2.2-ti2v-5b": Size(1280, 704, 121),
    "wan2.1-t2v-1.3b": Size(832, 480, 81),
    "wan2.2-t2v-a14b": Size(832, 480, 81),
    "ltx-2": Size(768, 512, 121),
}
TINY = Size(64, 64, 9)
TEXT_TOKENS = 512  # umT5 output length the pipeline pads to


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def smoke_preset(name: str, device: torch.device, dtype: torch.dtype, tiny: bool, steps: int = 2) -> dict:
    cfg = wan_build.tiny_config(name) if tiny else wan_build.load_config(name)
    size = TINY if tiny else SIZES[name]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    row: dict = {"preset": name, "size": f"{size.width}x{size.height}x{size.frames}"}

    # 1. Build transformer(s) and VAE on the device (no text encoder: random embeddings stand in for it)
    start = time.perf_counter()
    pipe = wan_build.build_pipeline(cfg, device=device, dtype=dtype, vae_dtype=dtype, with_text_encoder=False)
    _sync(device)
    row["build_s"] = time.perf_counter() - start
    pipe.set_progress_bar_config(disable=True)

    # 2. Denoising steps through the pipeline's own loop, CFG on
    text_dim = cfg["transformer"]["text_dim"]
    gen = torch.Generator(device="cpu").manual_seed(0)
    positive, negative = (
        torch.randn(1, TEXT_TOKENS, text_dim, generator=gen).to(device, dtype) for _ in range(2)
    )
    stamps = [time.perf_counter()]

    def on_step_end(p, i, t, kwargs):
        _sync(device)
        stamps.append(time.perf_counter())
        return kwargs

    latents = pipe(
        prompt_embeds=positive,
        negative_prompt_embeds=negative,
        height=size.height,
        width=size.width,
        num_frames=size.frames,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=gen,
        output_type="latent",
        callback_on_step_end=on_step_end,
    ).frames
    row["step_s"] = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]

    # 3. VAE decode at native size
    _sync(device)
    start = time.perf_counter()
    video = wan_loop.decode(pipe, latents, "pt-raw")
    _sync(device)
    row["decode_s"] = time.perf_counter() - start
    row["video"] = list(video.shape)
    row["finite"] = bool(torch.isfinite(video).all())
    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    del pipe, video, latents
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def smoke_ltx2(device: torch.device, dtype: torch.dtype, tiny: bool, steps: int = 2) -> dict:
    """LTX-2's transformer called directly (its pipeline needs Gemma-3 and the connectors), then a VAE decode.

    Each step is one forward of batch 2 (conditional and unconditional rows, batched as LTX2Pipeline does)
    over the video and audio tokens of the clip, with random text embeddings of the connectors' width.
    """
    cfg = ltx2_build.tiny_config() if tiny else ltx2_build.load_config()
    size = TINY if tiny else SIZES["ltx-2"]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    row: dict = {"preset": "ltx-2", "size": f"{size.width}x{size.height}x{size.frames}"}

    # 1. Build
    start = time.perf_counter()
    transformer, vae = ltx2_build.build_transformer_and_vae(cfg, device, dtype)
    _sync(device)
    row["build_s"] = time.perf_counter() - start

    # 2. Denoising forwards at the native latent size
    t = cfg["transformer"]
    frames, height, width = (size.frames - 1) // 8 + 1, size.height // 32, size.width // 32
    audio_frames = round(size.frames / cfg["native"]["fps"] * cfg["audio_latents_per_second"])
    gen = torch.Generator(device="cpu").manual_seed(0)

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device, dtype)

    video = noise(2, frames * height * width, t["in_channels"])
    audio = noise(2, audio_frames, t["audio_in_channels"])
    text = noise(2, cfg["text_tokens"], t["caption_channels"])
    row["step_s"] = []
    with torch.no_grad():
        for step in range(steps):
            sigma = torch.full((2,), 1.0 - step / steps, device=device)
            _sync(device)
            begin = time.perf_counter()
            video_out, _ = transformer(
                hidden_states=video,
                audio_hidden_states=audio,
                encoder_hidden_states=text,
                audio_encoder_hidden_states=text,
                timestep=sigma,
                sigma=sigma,
                num_frames=frames,
                height=height,
                width=width,
                fps=float(cfg["native"]["fps"]),
                audio_num_frames=audio_frames,
                return_dict=False,
            )
            _sync(device)
            row["step_s"].append(time.perf_counter() - begin)

        # 3. VAE decode of one clip's latents
        latents = video_out[:1].transpose(1, 2).reshape(1, t["in_channels"], frames, height, width)
        _sync(device)
        begin = time.perf_counter()
        decoded = vae.decode(latents.to(vae.dtype), return_dict=False)[0]
        _sync(device)
    row["decode_s"] = time.perf_counter() - begin
    row["video"] = list(decoded.shape)
    row["finite"] = bool(torch.isfinite(decoded).all())
    row["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    del transformer, vae, decoded, video_out
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def format_table(rows: list[dict], device_name: str, dtype: torch.dtype) -> str:
    lines = [
        f"gpu_smoke on {device_name}, torch {torch.__version__}; {dtype} transformer and VAE, random weights "
        "(CFG on)",
        "",
        "| preset | size (WxHxF) | build s | step 1 s (warm-up) | s/step | VAE decode s | peak GiB "
        "| output ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['preset']} | {r.get('size', '-')} | {r['error']} ||||||")
            continue
        steps = r["step_s"]
        lines.append(
            f"| {r['preset']} | {r['size']} | {r['build_s']:.1f} | {steps[0]:.2f} | {steps[-1]:.2f} | "
            f"{r['decode_s']:.2f} | {r['peak_gib']:.1f} | {r['finite']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU")
    parser.add_argument("--presets", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--budget-seconds", type=float, default=150.0)
    parser.add_argument("--out", default=os.environ.get("OUT"))
    args = parser.parse_args(argv)
    device = torch.device("cpu" if args.tiny else "cuda")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (tiny models)"
    start = time.perf_counter()
    # Rough seconds per preset on an H100, to skip what cannot finish inside the budget.
    estimates = {"wan2.2-ti2v-5b": 30.0, "wan2.1-t2v-1.3b": 15.0, "wan2.2-t2v-a14b": 35.0, "ltx-2": 20.0}
    rows = []
    for name in args.presets:
        left = args.budget_seconds - (time.perf_counter() - start)
        if not args.tiny and estimates[name] > left:
            print(f"SKIP {name}: needs ~{estimates[name]:.0f}s, {left:.0f}s left", flush=True)
            rows.append({"preset": name, "error": f"skipped, {left:.0f}s left"})
            continue
        try:
            if name == "ltx-2":
                row = smoke_ltx2(device, dtype, args.tiny)
            else:
                row = smoke_preset(name, device, dtype, args.tiny)
        except Exception:  # noqa: BLE001 - report the preset as failed and go on to the next
            print(f"ERROR {name}:\n{traceback.format_exc()}", flush=True)
            row = {"preset": name, "error": traceback.format_exc().strip().splitlines()[-1][:100]}
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print(f"[{time.perf_counter() - start:6.1f}s] {json.dumps(row)}", flush=True)
        rows.append(row)
        table = format_table(rows, device_name, dtype)
        if args.out:  # after every preset, so a run cut short by its timeout still leaves its rows
            Path(args.out).mkdir(parents=True, exist_ok=True)
            (Path(args.out) / "smoke.json").write_text(json.dumps(rows, indent=2))
            (Path(args.out) / "smoke.md").write_text(table + "\n")
    print("\n" + format_table(rows, device_name, dtype), flush=True)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
