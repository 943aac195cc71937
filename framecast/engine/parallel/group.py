"""One process's place in a group of ranks: torch.distributed (NCCL on CUDA, gloo on the CPU), the orders rank 0
sends the others, the per-step stop decision, and the device meshes of each layout.

Between requests the other ranks wait on a doorbell (a pipe from rank 0, their parent) rather than in a
collective: a collective times out, and a worker may sit idle for hours. Once rung, they take the order itself
from ``broadcast_object_list``; a doorbell that closes (rank 0 gone) or rings ``False`` ends them.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

import torch
import torch.distributed as dist

from framecast.engine.parallel.rule import Layout

__all__ = ["CfgSplit", "FollowerContext", "LeaderContext", "RankGroup"]

logger = logging.getLogger(__name__)

# A collective waits this long for its peers: longer than any one step or decode; a dead peer is noticed sooner
# (rank 0 watches its processes, and gloo fails on a closed connection).
COLLECTIVE_TIMEOUT = timedelta(minutes=30)


class RankGroup:
    """Rank ``rank`` of ``world``; ``bells`` are rank 0's ends of the doorbells, ``bell`` a follower's."""

    def __init__(self, rank: int, world: int, device: str, bells: list[Connection], bell: Connection | None):
        self.rank, self.world, self.device = rank, world, device
        self._bells, self._bell = bells, bell
        self._meshes: dict[Layout, Any] = {}

    @classmethod
    def join(
        cls,
        rank: int,
        world: int,
        device: str,
        port: int,
        *,
        bells: list[Connection] = (),  # type: ignore[assignment]
        bell: Connection | None = None,
    ) -> RankGroup:
        """Join the group's process group over loopback TCP on ``port`` (every rank calls this)."""
        if device == "cuda":
            torch.cuda.set_device(
                rank
            )  # the group's devices are all this process sees: rank r drives the r-th
        dist.init_process_group(
            "nccl" if device == "cuda" else "gloo",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world,
            timeout=COLLECTIVE_TIMEOUT,
        )
        return cls(rank, world, device, list(bells), bell)

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    # Orders: rank 0 sends, the others receive
    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def send(self, order: Any) -> None:
        for bell in self._bells:
            bell.send(True)
        self.broadcast(order)

    def dismiss(self) -> None:
        """Tell the other ranks to exit (rank 0, stopping)."""
        for bell in self._bells:
            with contextlib.suppress(OSError):  # that rank is gone already
                bell.send(False)

    def receive(self) -> Any | None:
        """The next order, or ``None`` when rank 0 dismissed this rank or is gone."""
        assert self._bell is not None
        try:
            if not self._bell.recv():
                return None
        except (EOFError, OSError):
            return None
        return self.broadcast(None)

    # Layouts
    def mesh(self, layout: Layout) -> Any:
        """The ``cfg x ring x ulysses`` device mesh of ``layout`` (built once: building it is a collective)."""
        if layout not in self._meshes:
            from torch.distributed.device_mesh import init_device_mesh

            self._meshes[layout] = init_device_mesh(
                self.device,
                (layout.cfg, layout.ring, layout.ulysses),
                mesh_dim_names=("cfg", "ring", "ulysses"),
            )
        return self._meshes[layout]

    def cfg_split(self, layout: Layout) -> CfgSplit | None:
        if layout.cfg == 1:
            return None
        mesh = self.mesh(layout)
        return CfgSplit(mesh.get_group("cfg"), mesh.get_local_rank("cfg"))


class CfgSplit:
    """CFG-parallel: this rank runs pass ``index`` (0 conditional, 1 unconditional); ``gather`` returns both."""

    def __init__(self, group: Any, index: int) -> None:
        self.group, self.index = group, index

    def gather(self, mine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mine = mine.contiguous()
        both = [torch.empty_like(mine) for _ in range(2)]
        dist.all_gather(both, mine, group=self.group)
        return both[0], both[1]


class LeaderContext:
    """Rank 0's render context in a parallel render: the job's context, whose stop decision every rank gets."""

    def __init__(self, ctx: Any, group: RankGroup) -> None:
        self.ctx, self.group = ctx, group

    def log(self, message: str, level: str = "INFO") -> None:
        self.ctx.log(message, level)

    def progress(self, step: int, total: int) -> None:
        self.ctx.progress(step, total)

    def should_stop(self) -> str | None:
        return self.group.broadcast(self.ctx.should_stop())


class FollowerContext:
    """Another rank's render context: no job to log to; it stops when rank 0 decides to, at the same step."""

    def __init__(self, group: RankGroup) -> None:
        self.group = group
        self.step = 0

    def log(self, message: str, level: str = "INFO") -> None:
        logger.debug("rank %d: %s", self.group.rank, message)

    def progress(self, step: int, total: int) -> None:
        self.step = step

    def should_stop(self) -> str | None:
        return self.group.broadcast(None)
