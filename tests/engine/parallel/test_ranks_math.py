"""The parallel layouts compute what one rank computes: tiny Wan's final latents from four real gloo ranks
(spawned processes, torch.distributed) under CFG-2 x Ulysses-2, which runs both the guidance gather and
diffusers' Ulysses all-to-alls, held to fp32 noise against one rank's. (The two-rank layouts alone are held to one
rank's frames through a live server in tests/test_ranks.py.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from framecast.engine.families import tiny_family
from framecast.engine.parallel.rule import Layout, parse_layout
from framecast.engine.planning import make_plan
from framecast.engine.presets import get_preset
from framecast.schema import TextToVideoInput

BODY = {"prompt": "a red fox trots through fresh snow", "resolution": "360p", "seed": 5}


def plan():
    return make_plan(TextToVideoInput.model_validate(BODY), get_preset("tiny-wan"))


def rank_main(rank: int, world: int, port: int, layouts: list[str], out: str) -> None:
    from framecast.engine.parallel.group import RankGroup

    torch.set_num_threads(1)
    group = RankGroup.join(rank, world, "cpu", port)
    family = tiny_family("tiny-wan")
    # A backend diffusers cannot split, as the attention lever may pick one: parallelize swaps it for one it can.
    family.pipe.transformer.set_attention_backend("_native_math")
    results = {}
    for text in layouts:
        layout = parse_layout(text)
        assert layout is not None
        family.parallelize(layout, group)
        results[text] = family.latents(plan(), None)
        processor = family.pipe.transformer.blocks[0].attn1.processor
        results[f"{text} backend"] = getattr(
            processor._attention_backend, "value", processor._attention_backend
        )
    if rank == 0:
        torch.save(results, out)
    group.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("world", "layouts"), [(4, ["cfg2,ulysses2"])])
def test_cfg_and_ulysses_combined_give_one_ranks_latents_to_fp32_noise(
    world: int, layouts: list[str], tmp_path: Path
):
    out = tmp_path / "latents.pt"
    mp.spawn(rank_main, args=(world, free_port(), layouts, str(out)), nprocs=world, join=True)
    family = tiny_family("tiny-wan")
    assert family.layout == Layout()
    reference = family.latents(plan(), None)
    other = family.latents(
        make_plan(TextToVideoInput.model_validate({**BODY, "seed": 6}), family.preset), None
    )

    results = torch.load(out)
    assert [results.pop(f"{text} backend") for text in layouts] == ["native"] * len(layouts)
    for text, latents in results.items():
        error = ((latents - reference).norm() / reference.norm()).item()
        assert error < 1e-5, (text, error)
    assert ((other - reference).norm() / reference.norm()).item() > 0.1  # a comparison that can fail
