"""The rule that splits a request across a group's ranks, for each family and card count (table-driven), with
the families' own declarations and the published head counts of their models."""

from __future__ import annotations

import json

import pytest

from framecast.engine.families import all_families, get_family
from framecast.engine.families.wan import build
from framecast.engine.parallel.rule import Layout, ParallelSupport, choose_strategy, parse_layout
from framecast.errors import ConfigError


def heads(arch: str) -> int:
    return int(build.load_config(arch)["transformer"]["num_attention_heads"])


def wan_tokens(frames: int, height: int, width: int) -> int:
    # Wan 2.1's VAE: 4x in time, 8x in space; patch 1x2x2.
    return ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)


T480 = wan_tokens(81, 480, 832)  # 21 x 30 x 52 = 32760
T720 = wan_tokens(81, 720, 1280)  # 21 x 45 x 80 = 75600

# family, model, ranks, guidance, device (ring attention on CUDA only), tokens -> layout, a word of the notes
TABLE = [
    ("wan", "wan2.1-t2v-1.3b", 1, True, "cuda", T480, "single", ""),
    ("wan", "wan2.1-t2v-1.3b", 2, True, "cuda", T480, "cfg2", ""),
    ("wan", "wan2.1-t2v-1.3b", 4, True, "cuda", T480, "cfg2,ulysses2", ""),
    ("wan", "wan2.1-t2v-1.3b", 8, True, "cuda", T480, "cfg2,ulysses4", ""),
    ("wan", "wan2.1-t2v-1.3b", 2, False, "cuda", T480, "ulysses2", ""),
    ("wan", "wan2.1-t2v-1.3b", 4, False, "cuda", T480, "ulysses4", ""),
    ("wan", "wan2.1-t2v-1.3b", 8, False, "cuda", T480, "ulysses4,ring2", ""),  # 12 heads: Ulysses takes 4
    ("wan", "wan2.1-t2v-1.3b", 8, False, "cpu", T480, "single", "no layout uses all 8 ranks"),
    ("wan", "wan2.2-ti2v-5b", 8, True, "cuda", T720, "cfg2,ulysses4", ""),
    ("wan", "wan2.2-ti2v-5b", 8, False, "cuda", T720, "ulysses8", ""),
    ("wan", "wan2.2-t2v-a14b", 4, True, "cuda", T720, "cfg2,ulysses2", ""),
    ("wan", "wan2.2-t2v-a14b", 8, True, "cuda", T720, "cfg2,ulysses4", ""),
    ("wan", "wan2.2-t2v-a14b", 8, False, "cuda", T720, "ulysses8", ""),
    ("wan", "wan2.2-t2v-a14b", 2, False, "cpu", 15, "single", "the 15 tokens do not split 2 ways"),
]


@pytest.mark.parametrize(
    ("family", "model", "ranks", "guidance", "device", "tokens", "layout", "note"), TABLE
)
def test_the_rule_picks_the_layout_of_each_family_card_count_and_request(
    family, model, ranks, guidance, device, tokens, layout, note
):
    strategy = choose_strategy(
        get_family(family).parallel,
        ranks,
        heads=heads(model),
        tokens=tokens,
        guidance=guidance,
        ring_attention=device == "cuda",
        family=family,
    )
    assert str(strategy.layout) == layout
    assert strategy.layout.ranks in (1, ranks)
    assert note in "; ".join(strategy.notes)


def test_the_tiny_wan_model_splits_two_ways_by_guidance_or_by_its_two_heads():
    support, tiny_heads = get_family("wan").parallel, build.TINY_TRANSFORMER["num_attention_heads"]
    assert tiny_heads == 2
    pick = lambda ranks, guidance: str(  # noqa: E731
        choose_strategy(
            support, ranks, heads=tiny_heads, tokens=588, guidance=guidance, ring_attention=False
        ).layout
    )
    assert (pick(2, True), pick(2, False), pick(4, True), pick(4, False)) == (
        "cfg2",
        "ulysses2",
        "cfg2,ulysses2",
        "single",
    )


@pytest.mark.parametrize("family", sorted(f.name for f in all_families() if not f.parallel.any))
@pytest.mark.parametrize("ranks", [2, 4, 8])
def test_a_family_without_a_parallel_plan_renders_on_rank_0_and_says_so(family, ranks):
    strategy = choose_strategy(
        get_family(family).parallel,
        ranks,
        heads=32,
        tokens=4096,
        guidance=True,
        ring_attention=True,
        family=family,
    )
    assert str(strategy.layout) == "single"
    assert strategy.describe(ranks).startswith("parallel: rank 0 renders alone")
    assert f"the {family} family has no parallel plan" in strategy.describe(ranks)


def test_a_named_layout_is_used_when_it_fits_and_else_the_rule_says_why_and_chooses():
    wan = get_family("wan").parallel
    args = dict(heads=12, tokens=T480, guidance=True, ring_attention=True)
    assert str(choose_strategy(wan, 2, wanted=Layout(ulysses=2), **args).layout) == "ulysses2"
    refused = choose_strategy(wan, 8, wanted=Layout(ulysses=8), **args)
    assert str(refused.layout) == "cfg2,ulysses4"
    assert (
        "FRAMECAST_PARALLEL=ulysses8 does not fit (Ulysses 8 does not divide the 12 attention heads)"
        in (refused.notes[0])
    )
    unguided = choose_strategy(wan, 2, wanted=Layout(cfg=2), **{**args, "guidance": False})
    assert str(unguided.layout) == "ulysses2" and "no guidance to split" in unguided.notes[0]


def test_a_family_that_splits_guidance_only_uses_two_ranks_and_no_more():
    cfg_only = ParallelSupport(cfg=True)
    args = dict(heads=12, tokens=T480, guidance=True, ring_attention=True, family="demo")
    assert str(choose_strategy(cfg_only, 2, **args).layout) == "cfg2"
    four = choose_strategy(cfg_only, 4, **args)
    assert str(four.layout) == "single" and "splits no attention" in four.notes[0]


@pytest.mark.parametrize(
    ("text", "layout"),
    [
        ("auto", None),
        ("", None),
        ("cfg2", Layout(cfg=2)),
        ("cfg2,ulysses4", Layout(2, 4)),
        ("Ring2", Layout(ring=2)),
    ],
)
def test_a_layout_setting_parses(text, layout):
    assert parse_layout(text) == layout


@pytest.mark.parametrize(
    ("text", "why"), [("cfg3", "cfg is 1 or 2"), ("tp2", "not cfg2"), ("ulysses0", "not cfg2")]
)
def test_a_malformed_layout_setting_is_refused_naming_the_variable(text, why):
    with pytest.raises(ConfigError, match=f"FRAMECAST_PARALLEL='{text.lower()}'.*{why}"):
        parse_layout(text)


def test_the_published_head_counts_are_the_ones_the_docs_quote():
    assert [heads(a) for a in ("wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b")] == [12, 24, 40]
    assert json.loads(build.CONFIG_DIR.joinpath("wan2.1-t2v-1.3b.json").read_text())["transformer"][
        "patch_size"
    ] == [
        1,
        2,
        2,
    ]
