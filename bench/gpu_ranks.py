"""Issue 13: one request split across 1, 2, 4, 8 ranks: s/step, end to end, scaling efficiency and the time spent
in communication per step; and the all-to-all cost model that predicts it where no multi-GPU machine is at hand.

    python -m bench.gpu_bench --gpus 8                # CUDA, NCCL: full-size random-weight Wan (--preset)
    python -m bench.gpu_bench --gpus 2 --tiny         # the CPU, gloo: the tiny Wan model (a smoke run)
    python -m bench.gpu_ranks --cost-model            # the model's table only (no torch.distributed)

Each rank count runs in its own spawned group (rank 0 reports); the layout is the rule's (engine/parallel/rule.py)
unless ``--layout`` names one. Communication is timed by wrapping the collectives the render makes (the CFG
all-gather, the stop broadcast, diffusers' Ulysses all-to-all), with a device sync around each on CUDA; the time is
rank 0's. Full-size models have random weights: compute does not depend on weight values.

The cost model (``cost_model``): Ulysses makes four all-to-alls per self-attention layer (q, k, v in; the output
back), each moving (k-1)/k of the rank's ``rows x tokens/k x heads x head_dim`` activations; cross-attention is not
split (diffusers' Wan plan leaves the text unsplit). Time = bytes / link bandwidth per direction, added to the
compute (FLOPs from gpu_model.dit_flops at an assumed sustained rate) divided by the ranks. No overlap of compute and
communication is assumed, so it is a pessimistic model, and a model: not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gpu_model import dit_flops
from framecast.engine.families.wan import build as wan_build
from framecast.engine.parallel.rule import Layout, choose_strategy, parse_layout

RANKS = (1, 2, 4, 8)
LINKS = {"NVLink 4 (H100 SXM)": 450e9, "PCIe 4.0 x16": 25e9}  # bytes/s per direction per GPU
SUSTAINED_FLOPS = 400e12  # assumed bf16 rate of one H100 on these DiTs (~40% of its dense peak)
# (model, label, width, height, frames): the published sizes of each model at 480p and 720p.
MODEL_CASES = (
    ("wan2.1-t2v-1.3b", "480p", 832, 480, 81),
    ("wan2.1-t2v-1.3b", "720p", 1280, 720, 81),
    ("wan2.2-ti2v-5b", "480p", 832, 480, 121),
    ("wan2.2-ti2v-5b", "720p", 1280, 704, 121),
    ("wan2.2-t2v-a14b", "480p", 832, 480, 81),
    ("wan2.2-t2v-a14b", "720p", 1280, 720, 81),
)


# -- the cost model ----------------------------------------------------------------------------------------


def tokens_of(cfg: dict, width: int, height: int, frames: int) -> int:
    vae, patch = cfg["vae"], cfg["transformer"]["patch_size"]
    latent_frames = (frames - 1) // vae["scale_factor_temporal"] + 1
    s = vae["scale_factor_spatial"]
    return latent_frames * (height // (s * patch[1])) * (width // (s * patch[2]))


def ulysses_bytes(cfg: dict, tokens: int, ulysses: int, rows: int, dtype_bytes: int = 2) -> float:
    """Bytes one rank sends per denoising step under Ulysses ``ulysses`` (``rows``: batch rows per forward)."""
    t = cfg["transformer"]
    width = t["num_attention_heads"] * t["attention_head_dim"]
    per_all_to_all = rows * tokens / ulysses * width * dtype_bytes * (ulysses - 1) / ulysses
    return t["num_layers"] * 4 * per_all_to_all


def modelled(cfg: dict, tokens: int, layout: Layout, link: float) -> dict[str, float]:
    """Predicted seconds per step (compute, communication) of ``layout``; guidance on (two passes a step)."""
    compute = dit_flops(cfg, tokens, rows=2) / SUSTAINED_FLOPS / layout.ranks
    rows = 1 if layout.cfg == 2 else 2
    comm = ulysses_bytes(cfg, tokens, layout.ulysses, rows) / link if layout.ulysses > 1 else 0.0
    if layout.cfg == 2:  # the velocity all-gather: one latent's worth from the other rank
        t = cfg["transformer"]
        comm += tokens * t["out_channels"] * 4 * 2 / link  # fp32 latents; patch 1x2x2 = 4 values per channel
    return {"compute": compute, "comm": comm, "step": compute + comm}


def cost_model() -> list[dict[str, Any]]:
    rows = []
    for name, label, width, height, frames in MODEL_CASES:
        cfg = wan_build.load_config(name)
        tokens = tokens_of(cfg, width, height, frames)
        heads = cfg["transformer"]["num_attention_heads"]
        for ranks in RANKS:
            layout = _rule(ranks, heads, tokens, ring=True)
            for link_name, link in LINKS.items():
                one = modelled(cfg, tokens, Layout(), link)["step"]
                step = modelled(cfg, tokens, layout, link)
                bytes_sent = ulysses_bytes(cfg, tokens, layout.ulysses, 1 if layout.cfg == 2 else 2)
                rows.append(
                    {
                        "model": name,
                        "size": f"{label} {width}x{height}x{frames}",
                        "tokens": tokens,
                        "ranks": ranks,
                        "layout": str(layout),
                        "link": link_name,
                        "mb_per_step": bytes_sent / 1e6 if layout.ulysses > 1 else 0.0,
                        "s_per_step": step["step"],
                        "comm_s": step["comm"],
                        "efficiency": one / (ranks * step["step"]),
                    }
                )
    return rows


def _rule(ranks: int, heads: int, tokens: int, ring: bool, wanted: Layout | None = None) -> Layout:
    from framecast.engine.families import get_family

    support = get_family("wan").parallel
    strategy = choose_strategy(
        support, ranks, heads=heads, tokens=tokens, guidance=True, ring_attention=ring, wanted=wanted
    )
    return strategy.layout


# -- the measurement ---------------------------------------------------------------------------------------


class CommClock:
    """Seconds spent inside the collectives a render makes, on this rank (wrappers around them, for the bench)."""

    def __init__(self, cuda: bool) -> None:
        import torch
        import torch.distributed as dist
        from diffusers.models import attention_dispatch

        self.seconds = 0.0
        self._sync: Callable[[], None] = torch.cuda.synchronize if cuda else (lambda: None)
        for owner, name in ((dist, "all_gather"), (dist, "broadcast_object_list")):
            setattr(owner, name, self._timed(getattr(owner, name)))
        attention_dispatch._all_to_all_single = self._timed(attention_dispatch._all_to_all_single)

    def _timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._sync()
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._sync()
                self.seconds += time.perf_counter() - started

        return timed


def _family(args: argparse.Namespace, cuda: bool) -> Any:
    import torch

    from framecast.engine.families import get_family, tiny_family
    from framecast.engine.presets import get_preset

    if args.tiny:
        return tiny_family("tiny-wan")
    preset = get_preset(args.preset)
    family = get_family(preset.family)(preset)
    family.pipe = wan_build.build_pipeline(
        wan_build.load_config(preset.architecture),
        device=torch.device("cuda" if cuda else "cpu"),
        dtype=torch.bfloat16,
        vae_dtype=torch.float32,
        experts=1,  # one expert runs per step; the second would only take memory
    )
    return family


def rank_main(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    import torch

    from framecast.engine.families.wan import loop
    from framecast.engine.parallel.group import RankGroup
    from framecast.engine.planning import make_plan
    from framecast.schema import TextToVideoInput

    cuda = not args.tiny
    if not cuda:  # one core per rank, whatever the rank count: 1 and 2 ranks compare like for like
        torch.set_num_threads(1)
    group = RankGroup.join(rank, world, "cuda" if cuda else "cpu", port)
    family = _family(args, cuda)
    request = TextToVideoInput(prompt="a red fox runs through fresh snow", resolution=args.resolution, seed=1)
    plan = make_plan(request, family.preset)
    heads = family.modules().heads
    layout = _rule(world, heads, family.tokens(plan), ring=cuda, wanted=parse_layout(args.layout))
    family.parallelize(layout, group)
    with torch.inference_mode():
        family.latents(plan, None, max_steps=1)  # warm-up
        clock = CommClock(cuda)
        marks: list[float] = []
        started = time.perf_counter()
        latents = family.latents(
            plan, lambda i, n, x: marks.append(time.perf_counter()), max_steps=args.steps
        )
        loop.decode(family.pipe, latents)
        total = time.perf_counter() - started
    steps = len(marks)
    step_seconds = (marks[-1] - marks[0]) / (steps - 1) if steps > 1 else marks[0] - started
    if rank == 0:
        # End to end: what was timed (encode, the steps run, decode), the steps not run added at the step rate.
        e2e = total + (family.denoising_steps(plan) - steps) * step_seconds
        result = {
            "ranks": world,
            "layout": str(layout),
            "tokens": family.tokens(plan),
            "s_per_step": step_seconds,
            "comm_s_per_step": clock.seconds / steps,
            "end_to_end_s": e2e,
            "steps_timed": steps,
            "steps": family.denoising_steps(plan),
        }
        Path(out).write_text(json.dumps(result))
    group.close()


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch.multiprocessing as mp

    rows = []
    for world in (n for n in RANKS if n <= args.gpus):
        out = Path(args.out or ".") / f"ranks-{world}.json"
        mp.spawn(rank_main, args=(world, _free_port(), args, str(out)), nprocs=world, join=True)
        rows.append(json.loads(out.read_text()))
    one = rows[0]
    for row in rows:
        row["speed_up"] = one["end_to_end_s"] / row["end_to_end_s"]
        row["efficiency"] = one["s_per_step"] / (row["ranks"] * row["s_per_step"])
    return rows


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- tables ------------------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(title for title, _, _ in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(format(row[key], fmt) for _, key, fmt in columns) + " |")
    return "\n".join(lines)


MEASURED = [
    ("ranks", "ranks", "d"),
    ("layout", "layout", "s"),
    ("s/step", "s_per_step", ".4f"),
    ("comm s/step", "comm_s_per_step", ".4f"),
    ("end to end s", "end_to_end_s", ".2f"),
    ("speed-up", "speed_up", ".2f"),
    ("efficiency", "efficiency", ".0%"),
]
MODELLED = [
    ("model", "model", "s"),
    ("size", "size", "s"),
    ("tokens", "tokens", "d"),
    ("ranks", "ranks", "d"),
    ("layout", "layout", "s"),
    ("link", "link", "s"),
    ("MB sent/rank/step", "mb_per_step", ".0f"),
    ("s/step", "s_per_step", ".3f"),
    ("comm s/step", "comm_s", ".3f"),
    ("efficiency", "efficiency", ".0%"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpus", type=int, default=0, help="measure 1, 2, 4, 8 ranks up to this many")
    parser.add_argument("--tiny", action="store_true", help="the tiny model on CPU gloo ranks")
    parser.add_argument("--preset", default="wan2.1-t2v-1.3b", help="full-size preset (CUDA)")
    parser.add_argument(
        "--resolution", default="720p", help="the request's resolution (360p, 540p, 720p, 1080p)"
    )
    parser.add_argument("--steps", type=int, default=5, help="denoising steps timed per rank count")
    parser.add_argument(
        "--layout", default="auto", help="FRAMECAST_PARALLEL's values: auto, cfg2, ulysses2, ..."
    )
    parser.add_argument("--cost-model", action="store_true", help="print the cost model's table")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="folder for the JSON results")
    args, _ = parser.parse_known_args(argv)
    if args.cost_model or not args.gpus:
        print("All-to-all cost model (a MODEL, not a measurement; see the module docstring):")
        print(table(cost_model(), MODELLED))
    if args.gpus:
        rows = measure(args)
        where = "tiny model, CPU gloo ranks" if args.tiny else f"{args.preset} (random weights), CUDA NCCL"
        print(f"Measured: {where}, {args.resolution}, {args.steps} steps timed per rank count")
        print(table(rows, MEASURED))
    return 0


if __name__ == "__main__":
    sys.exit(main())
