"""Times the upscaler stage (framecast/engine/stages/upscale.py) at full size with random weights.

The Kandinsky 6 VSR's diffusers class defaults are its published geometry (1.41B transformer, 1.74B VAE, 3.65B
latent-upscaler bank: tests/bench/test_gpu_scripts.py checks the counts), so a random-weight build runs the same
convolutions and matmuls as the real one. One caveat: its NABLA attention keeps the key blocks that hold 80 % of
each query block's attention, which depends on the weights; random ones spread attention evenly, so more blocks are
kept and the attention here is if anything slower than the real model's.

Cases: the 1080p inputs the plans give (planning/upscale.py), for 5 s and 8 s. ``--tiny`` runs the tiny model on
the CPU (the script's test). Writes ``vsr.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from framecast.engine.stages.upscale import Upscaler, build_tiny_upscaler

# name: (width, height, frames, scale) of the clip the stage gets
CASES = {
    "wan2.2-ti2v-5b 1080p 5 s": (1280, 704, 120, 2.0),
    "wan2.2-ti2v-5b 1080p 8 s": (1280, 704, 192, 2.0),
    "wan2.1-t2v-1.3b 1080p 5 s": (848, 480, 80, 2.25),
    "wan2.1-t2v-1.3b 1080p 8 s (128 frames)": (848, 480, 128, 2.25),
    "wan2.2-t2v-a14b 1080p 5 s": (1280, 720, 80, 2.0),
}
TINY_CASES = {"tiny 5 frames": (64, 32, 5, 4.0), "tiny 17 frames, two windows": (64, 32, 17, 4.0)}


def full_size_pipeline(device: str) -> Any:
    """The published VSR with random weights, in bfloat16, its transformer's blocks compiled (as the stage does)."""
    from diffusers import (
        Kandinsky6SRLatentUpscalerBank,
        Kandinsky6SRPipeline,
        Kandinsky6SRTransformer3DModel,
        Kandinsky6SRVAE,
        PiflowScheduler,
    )

    torch.manual_seed(0)
    with torch.device(device):
        parts = [Kandinsky6SRTransformer3DModel(), Kandinsky6SRVAE(), Kandinsky6SRLatentUpscalerBank()]
    transformer, vae, latent_upscaler = (part.to(torch.bfloat16).eval() for part in parts)
    scheduler = PiflowScheduler(shift=3.5, n_grid=10)  # the distilled repo's scheduler config
    pipe = Kandinsky6SRPipeline(transformer, vae, scheduler, latent_upscaler)
    pipe.set_progress_bar_config(disable=True)
    pipe.transformer.compile_repeated_blocks(fullgraph=True)
    return pipe


def time_case(stage: Upscaler, width: int, height: int, frames: int, scale: float) -> dict[str, Any]:
    """A warm-up call (it compiles), then a timed one, as a render runs it: moved to the GPU and back included."""
    video = torch.rand((frames, 3, height, width), generator=torch.Generator().manual_seed(0))
    logs: list[str] = []
    stage.upscale(video, scale, seed=0, log=logs.append)
    if stage.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    out = stage.upscale(video, scale, seed=0, log=logs.append)
    if stage.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if stage.device == "cuda" else None
    return {
        "input": f"{width}x{height}",
        "frames": frames,
        "scale": scale,
        "output": f"{out.shape[-1]}x{out.shape[-2]}",
        "seconds": round(seconds, 2),
        "peak_gib": None if peak is None else round(peak, 1),
        "log": logs[-1],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny model on the CPU")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    args = parser.parse_args(argv)

    if args.tiny:
        stage, cases = Upscaler(build_tiny_upscaler(), "tiny", max_frames=13), TINY_CASES
    else:
        stage, cases = Upscaler(full_size_pipeline("cuda"), "kandinsky6-vsr", device="cuda"), CASES
    results = {}
    for name, case in cases.items():
        if args.only in name:
            results[name] = time_case(stage, *case)
            print(json.dumps({name: results[name]}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vsr.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
