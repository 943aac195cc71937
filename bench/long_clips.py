"""Long clips by each method, side by side: time, and continuity (mean colour and sharpness per second).

For a 10 s request on a preset's tiny twin (default) or its real weights (``--real``, on a GPU with them), it
renders the clip by every method the preset's family supports and prints one table: wall time, the largest change
of a channel's mean colour over the clip ("colour range"), the colour jump at each join, and the sharpness per
second (variance of the luma's Laplacian). Chaining is measured three times: with the colour matching at
its joins forced on and off, beside the engine's own path (which matches only where the continued frame is the same
picture), to show what the matching does. On random weights the pictures are noise: the figures show the
mechanism (what the joins do to colour), not image quality.

    python -m bench.long_clips                      # tiny twins of wan2.2-ti2v-5b and wan2.1-t2v-1.3b, CPU
    python -m bench.long_clips --presets wan2.2-ti2v-5b --real
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from framecast.engine import EngineOptions
from framecast.engine.continuity import drift, match_colour
from framecast.engine.engine import DiffusersEngine
from framecast.engine.families.base import Steps
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.schema import TextToVideoInput

PROMPT = "a red fox trots through fresh snow in a pine forest at dawn, low tracking shot"


class _Quiet:
    def log(self, message: str, level: str = "INFO") -> None:
        pass

    def progress(self, step: int, total: int) -> None:
        pass

    def should_stop(self) -> str | None:
        return None


def _chain(engine: DiffusersEngine, plan, matched: bool) -> torch.Tensor:
    """The chained clip built from the family's own calls, with or without the engine's colour matching."""
    model, steps = engine.model, Steps(_Quiet(), 0, plan.steps * plan.segments)
    video = model.generate(plan, steps).video
    for segment in range(1, plan.segments):
        more = model.continue_clip(video[-1], plan, segment, steps).to(video.device)
        video = torch.cat([video, (match_colour(more, video[-1]) if matched else more)[1:]])
    return video


def _joins(video: torch.Tensor, plan) -> str:
    if plan.temporal != "chain":
        return "-"
    at = [j["frame"] for j in plan.joins()]
    jumps = [
        float((video[f].float().mean((1, 2)) - video[f - 1].float().mean((1, 2))).abs().max()) for f in at
    ]
    return " ".join(f"{j:.4f}" for j in jumps)


def measure(name: str, real: bool, seconds: str) -> list[dict]:
    preset = get_preset(name if real else f"tiny:{name}")
    request = TextToVideoInput(prompt=PROMPT, duration=seconds, resolution="480p" if real else "360p", seed=1)
    rows = []
    for method in ("native", "stretch"):
        engine = DiffusersEngine(preset, EngineOptions(long_clips=method))
        engine.load()
        plan = make_plan(request, preset, stretch=method == "stretch")
        variants = [(plan.temporal, None)]
        if plan.temporal == "chain":
            # the engine's own path matches a join's colour only where the continued frame is the same picture
            # (continuity.same_picture); the other two force it on and off, to show what matching does
            variants = [
                ("chain (engine)", None),
                ("chain, always colour-matched", True),
                ("chain, never colour-matched", False),
            ]
        for label, matched in variants:
            start = time.perf_counter()
            with torch.inference_mode():
                if matched is None:
                    video = engine.generate(dataclasses.replace(plan), _Quiet()).video
                else:
                    video = _chain(engine, plan, matched)
            seconds_taken = time.perf_counter() - start
            report = drift(video, plan.fps)
            rows.append(
                {
                    "preset": preset.name,
                    "method": label,
                    "frames": video.shape[0],
                    "s": seconds_taken,
                    "colour range": report.colour_range,
                    "join jumps": _joins(video, plan),
                    "sharpness/s": " ".join(f"{s:.4f}" for s in report.sharpness),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", default="wan2.2-ti2v-5b,wan2.1-t2v-1.3b")
    parser.add_argument("--duration", default="10", choices=["8", "10"])
    parser.add_argument("--real", action="store_true", help="the real weights (a GPU machine that has them)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = [
        row for name in args.presets.split(",") for row in measure(name.strip(), args.real, args.duration)
    ]
    header = list(rows[0])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [
            f"{v:.4f}" if isinstance(v, float) and k != "s" else f"{v:.1f}" if k == "s" else str(v)
            for k, v in row.items()
        ]
        print("| " + " | ".join(cells) + " |")
    return rows


if __name__ == "__main__":
    main()
