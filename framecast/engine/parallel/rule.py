"""The rule that splits one request across a group's ranks, and what a family declares it can split.

A layout is ``cfg x ring x ulysses`` ranks (their product is the group's size):

- ``cfg = 2``: the conditional and unconditional passes of classifier-free guidance run on different ranks and
  their outputs are gathered each step (one all-gather of the velocity: the least communication of all);
- ``ulysses = k``: diffusers' Ulysses attention: the token sequence is split k ways, and an all-to-all before and
  after each attention trades tokens for heads, so k must divide the attention heads and the tokens;
- ``ring = r``: diffusers' ring attention (the sequence split r ways, keys and values passed round); it needs an
  attention backend that returns the log-sum-exp (flash, cuDNN, sage: CUDA only; the CPU's native one does not).

``choose_strategy`` is THE rule (docs/deploy.md repeats it):

1. One rank, or a family with no parallel plan: rank 0 renders alone and says so.
2. A layout the operator named (``FRAMECAST_PARALLEL``) is used when it fits this request; when it does not, the
   rule says why and goes on as ``auto``.
3. ``auto``: CFG-2 when the request has guidance, the family can split it and the ranks are even; the remaining
   ranks go to Ulysses, as many as divide the heads; what Ulysses cannot take goes to ring attention where it
   runs. The tokens must split evenly over ``ulysses x ring``.
4. When no layout uses every rank, rank 0 renders alone and the rule says why (ranks left idle would still have
   to take part in every collective).

Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.errors import ConfigError

__all__ = ["Layout", "ParallelSupport", "Strategy", "choose_strategy", "parse_layout"]


@dataclass(frozen=True)
class ParallelSupport:
    """What a family's render can split across ranks (``Family.parallel``).

    ``cfg``: its own denoising loop runs the two guidance passes separately when asked (CFG-parallel).
    ``context``: its denoisers have a diffusers context-parallel plan (``_cp_plan``) and every call of them runs
    on every rank in step, so Ulysses / ring attention apply.
    """

    cfg: bool = False
    context: bool = False

    @property
    def any(self) -> bool:
        return self.cfg or self.context


@dataclass(frozen=True)
class Layout:
    cfg: int = 1
    ulysses: int = 1
    ring: int = 1

    @property
    def ranks(self) -> int:
        return self.cfg * self.ulysses * self.ring

    def __str__(self) -> str:
        named = (("cfg", self.cfg), ("ulysses", self.ulysses), ("ring", self.ring))
        return ",".join(f"{name}{n}" for name, n in named if n > 1) or "single"


SINGLE = Layout()


@dataclass(frozen=True)
class Strategy:
    """The layout one request runs with, and the rule's reasons (written to the job's log)."""

    layout: Layout
    notes: tuple[str, ...] = ()

    @property
    def parallel(self) -> bool:
        return self.layout.ranks > 1

    def describe(self, ranks: int) -> str:
        line = (
            f"parallel: {self.layout} on {ranks} ranks" if self.parallel else "parallel: rank 0 renders alone"
        )
        return "; ".join([line, *self.notes])


def parse_layout(text: str) -> Layout | None:
    """``auto`` -> ``None``; ``"cfg2,ulysses4"`` -> that layout. Raises ``ConfigError`` naming the setting."""
    text = text.strip().lower()
    if text in ("", "auto"):
        return None
    values = {"cfg": 1, "ulysses": 1, "ring": 1}
    for part in (p.strip() for p in text.split(",")):
        name = part.rstrip("0123456789")
        number = part[len(name) :]
        if name not in values or not number or int(number) < 1:
            raise ConfigError(
                f"FRAMECAST_PARALLEL={text!r}: {part!r} is not cfg2, ulysses<k> or ring<k> "
                "(e.g. auto, cfg2, ulysses2, cfg2,ulysses4)"
            )
        values[name] = int(number)
    if values["cfg"] > 2:
        raise ConfigError(f"FRAMECAST_PARALLEL={text!r}: guidance has two passes, so cfg is 1 or 2")
    return Layout(**values)


def choose_strategy(
    support: ParallelSupport,
    ranks: int,
    *,
    heads: int,
    tokens: int,
    guidance: bool,
    ring_attention: bool,
    wanted: Layout | None = None,
    family: str = "this",
) -> Strategy:
    """The layout for one request on ``ranks`` ranks (module docstring). ``heads``: the denoiser's attention
    heads; ``tokens``: the sequence one denoiser call attends over; ``ring_attention``: whether the attention
    backend here can run ring attention."""
    # 1. Nothing to split
    if ranks == 1:
        return Strategy(SINGLE)
    if not support.any:
        return Strategy(SINGLE, (f"the {family} family has no parallel plan; ranks 1-{ranks - 1} stay idle",))
    notes: list[str] = []
    # 2. The operator's layout, when it fits
    if wanted is not None:
        refusal = _refusal(wanted, support, ranks, heads, tokens, guidance, ring_attention)
        if refusal is None:
            return Strategy(wanted)
        notes.append(f"FRAMECAST_PARALLEL={wanted} does not fit ({refusal}); the rule chose instead")
    # 3. auto
    cfg = 2 if support.cfg and guidance and ranks % 2 == 0 else 1
    rest = ranks // cfg
    if rest == 1:
        return Strategy(Layout(cfg=cfg), tuple(notes))
    if not support.context:
        notes.append(f"the {family} family splits no attention, so {rest} ranks per pass would idle")
        return Strategy(SINGLE, tuple(notes))
    for ulysses in sorted((d for d in range(1, rest + 1) if rest % d == 0), reverse=True):
        layout = Layout(cfg=cfg, ulysses=ulysses, ring=rest // ulysses)
        if _refusal(layout, support, ranks, heads, tokens, guidance, ring_attention) is None:
            return Strategy(layout, tuple(notes))
    # 4. No layout takes every rank
    why = _refusal(Layout(cfg=cfg, ulysses=rest), support, ranks, heads, tokens, guidance, ring_attention)
    notes.append(f"no layout uses all {ranks} ranks ({why})")
    return Strategy(SINGLE, tuple(notes))


def _refusal(
    layout: Layout,
    support: ParallelSupport,
    ranks: int,
    heads: int,
    tokens: int,
    guidance: bool,
    ring_attention: bool,
) -> str | None:
    """Why ``layout`` cannot run this request, or ``None`` when it can."""
    split = layout.ulysses * layout.ring
    if layout.ranks != ranks:
        return f"it takes {layout.ranks} ranks, the group has {ranks}"
    if layout.cfg == 2 and not (support.cfg and guidance):
        return "this request has no guidance to split" if support.cfg else "the family cannot split guidance"
    if split > 1 and not support.context:
        return "the family has no context-parallel plan"
    if heads % layout.ulysses:
        return f"Ulysses {layout.ulysses} does not divide the {heads} attention heads"
    if layout.ring > 1 and not ring_attention:
        return "ring attention needs a backend that returns the log-sum-exp (flash, cuDNN, sage on CUDA)"
    if tokens % split:
        return f"the {tokens} tokens do not split {split} ways"
    return None
