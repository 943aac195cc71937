"""``RankedEngine``: the engine of one rank of a group; every rank holds the model, all of them render each request.

Rank 0 is the worker's engine: it plans the request (its creative stages run once, there), picks the layout by the
rule (rule.py) and writes both to the job's log, sends the plan to the other ranks, renders its part with them
step by step (the stop decision broadcast at every step), and alone maps, scores and encodes the result. The other
ranks run ``follow``: take an order, render their part, wait for the next.

A render that fails on one rank but not the others leaves the group out of step: the failing rank reports
``broken`` (rank 0) or exits (the others), and the whole group restarts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framecast.engine.base import RenderContext, RenderResult
from framecast.engine.parallel.group import FollowerContext, LeaderContext, RankGroup
from framecast.engine.parallel.rule import Layout, Strategy, choose_strategy
from framecast.engine.planning.plan import RenderPlan
from framecast.errors import RenderStopped
from framecast.schema import TextToVideoInput

__all__ = ["Order", "RankedEngine"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Order:
    """What rank 0 sends the other ranks for one request."""

    plan: RenderPlan
    style: Any
    layout: Layout


class RankedEngine:
    """``inner`` (a ``DiffusersEngine``) on rank ``group.rank``; ``wanted`` is the operator's layout, if any."""

    def __init__(self, inner: Any, group: RankGroup, wanted: Layout | None = None) -> None:
        self.inner, self.group, self.wanted = inner, group, wanted
        self.name = inner.name
        self.broken: str | None = None  # why the group is out of step (rank 0); the worker then restarts it

    def load(self) -> None:
        self.inner.load()

    def strategy(self, plan: RenderPlan) -> Strategy:
        model = self.inner.model
        support = model.parallel
        return choose_strategy(
            support,
            self.group.world,
            heads=model.modules().heads if support.any else 0,
            tokens=model.tokens(plan) if support.context else 0,
            guidance=plan.guidance_scale > 1.0,
            ring_attention=self.group.device == "cuda",
            wanted=self.wanted,
            family=model.name,
        )

    def render(self, request: TextToVideoInput, ctx: RenderContext, out_path: Path) -> RenderResult:
        """Rank 0: plan, send the order, render in step with the others, encode."""
        # 1. Plan (creative stages on rank 0 only) and pick the layout
        plan = self.inner.logged_plan(request, ctx)
        strategy = self.strategy(plan)
        ctx.log(strategy.describe(self.group.world))
        order = Order(plan, request.style, strategy.layout)
        # 2. Every rank renders its part; the stop decision reaches all of them at the same step
        self.group.send(order)
        synced = LeaderContext(ctx, self.group) if strategy.parallel else ctx
        try:
            clips = self._run(order, synced)
        except RenderStopped:
            raise
        except Exception as exc:
            self.broken = f"rank 0 failed mid-render ({type(exc).__name__})"
            raise
        # 3. Rank 0 alone maps, adds audio and encodes
        return self.inner.finish(plan, clips, ctx, out_path)

    def follow(self) -> None:
        """Ranks 1..N-1: render each order until rank 0 dismisses this rank or is gone. An error other than a
        stop raises: this rank is out of step, and its process must end so that the group restarts."""
        while (order := self.group.receive()) is not None:
            if not order.layout.ranks > 1:
                continue  # rank 0 renders this one alone
            ctx = FollowerContext(self.group)
            try:
                self._run(order, ctx)
            except RenderStopped as exc:
                logger.info("rank %d: stopped after step %d (%s)", self.group.rank, ctx.step, exc.reason)
            else:
                logger.info("rank %d: rendered %d steps", self.group.rank, ctx.step)

    def _run(self, order: Order, ctx: RenderContext) -> Any:
        self.inner.activate_style(order.style)
        self.inner.model.parallelize(order.layout, self.group)
        return self.inner.generate_shots(order.plan, ctx)
