"""A worker that drives a GPU group (``--gpus 0,1`` / ``cpu:2``): this process is rank 0, its children the others.

Rank 0 is an ordinary worker (worker.py: claims, heartbeats, logs, completes; the only rank that talks to the job
store) whose engine is a ``RankedEngine``: it sends each request's plan to the other ranks and renders with them
(engine/parallel/). The other ranks are spawned processes that load the same model on their own device and follow.

A dead rank ends the whole group, never just itself: rank 0 watches its children's process handles; when one ends,
the running job goes back to the queue as one crash (``JobStore.crashed``: fenced by the attempt, so the lease reaper
cannot count it again), and the worker exits 1 so that its supervisor (``serve``'s worker pool) restarts the group.
If rank 0 itself dies, the others die with it (parent-death signal, and their doorbell closes), and the reaper
recovers the job when its lease runs out.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from framecast.config import Settings
from framecast.errors import ConfigError
from framecast.gpus import GpuGroup, parse_gpus
from framecast.logs import configure_logging

__all__ = ["RankProcesses", "one_group", "run_group"]

logger = logging.getLogger(__name__)

EngineFactory = Callable[[Settings], Any]

# After a rank dies, how long rank 0's render may take to fail by itself before the watch hands its job back and
# ends the process (an NCCL collective waiting on a dead peer never returns).
ABANDON_AFTER_SECONDS = 10.0
DISMISS_SECONDS = 10.0  # how long the other ranks may take to exit when rank 0 stops
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def one_group(settings: Settings) -> GpuGroup | None:
    """The one group ``settings.gpus`` names for a single worker; ``None`` without ``--gpus``."""
    groups = parse_gpus(settings.gpus, settings.group_size)
    if len(groups) > 1:
        raise ConfigError(
            f"--gpus {settings.gpus} with --group-size {settings.group_size} makes {len(groups)} groups, and "
            "`framecast worker` drives one: run `framecast serve --gpus ...` (one worker per group), or one "
            "`framecast worker` per group"
        )
    return groups[0] if groups else None


def run_group(
    settings: Settings, engine_factory: EngineFactory | None = None, stop: threading.Event | None = None
) -> None:
    """Run the worker of ``settings.gpus``'s group: rank 0 here, the others as child processes."""
    from framecast.worker import run_worker

    group = one_group(settings)
    if group is None or group.ranks == 1:
        if group is not None and group.device == "cuda":
            os.environ["CUDA_VISIBLE_DEVICES"] = group.spec
        run_worker(settings, engine_factory, stop)
        return
    # 1. Before torch starts: the group's devices are all its ranks see (rank r drives the r-th of them).
    if group.device == "cuda":
        os.environ["CUDA_VISIBLE_DEVICES"] = group.spec
    _limit_threads(group)
    # 2. The other ranks, then rank 0's engine joins them (init_process_group waits for every rank).
    port = _free_port()
    ranks = RankProcesses.start(settings, group, port, engine_factory)
    factory = _RankZero(group, port, ranks.bells, engine_factory)
    # 3. Rank 0 works; a rank that dies ends the group (the job goes back to the queue, counted as one crash).
    try:
        run_worker(settings, factory, stop, ranks=ranks, on_ready=ranks.watch)
    finally:
        ranks.expect_exits()
        if factory.engine is not None:
            factory.engine.group.dismiss()
        ranks.stop()


class _RankZero:
    """The engine factory of rank 0: the preset's engine, joined to the group (kept, to dismiss it later)."""

    def __init__(self, group: GpuGroup, port: int, bells: list[Connection], inner: EngineFactory | None):
        self.group, self.port, self.bells, self.inner = group, port, bells, inner
        self.engine: Any = None

    def __call__(self, settings: Settings) -> Any:
        self.engine = _ranked_engine(settings, self.group, 0, self.port, self.inner, bells=self.bells)
        return self.engine


def _ranked_engine(
    settings: Settings,
    group: GpuGroup,
    rank: int,
    port: int,
    inner: EngineFactory | None,
    *,
    bells: list[Connection] = (),  # type: ignore[assignment]
    bell: Connection | None = None,
) -> Any:
    from framecast.engine import create_engine, engine_options
    from framecast.engine.parallel.group import RankGroup
    from framecast.engine.parallel.ranked import RankedEngine
    from framecast.engine.parallel.rule import parse_layout

    wanted = parse_layout(engine_options(settings).parallel)
    ranks = RankGroup.join(rank, group.ranks, group.device, port, bells=bells, bell=bell)
    return RankedEngine((inner or create_engine)(settings), ranks, wanted)


class RankProcesses:
    """Ranks 1..N-1 of a group, as rank 0 sees them: their processes, doorbells, and a watch on their lives."""

    def __init__(self, processes: list[BaseProcess], bells: list[Connection]) -> None:
        self.processes, self.bells = processes, bells
        self._dead: str | None = None
        self._died = threading.Event()
        self._stopping = threading.Event()

    @classmethod
    def start(
        cls, settings: Settings, group: GpuGroup, port: int, engine_factory: EngineFactory | None
    ) -> RankProcesses:
        context = multiprocessing.get_context(
            "spawn"
        )  # a fresh interpreter: no inherited threads or CUDA state
        processes: list[BaseProcess] = []
        bells: list[Connection] = []
        for rank in range(1, group.ranks):
            bell_child, bell_parent = context.Pipe(duplex=False)  # the child reads; EOF means rank 0 is gone
            process = context.Process(
                target=follower_main,
                args=(settings, group, rank, port, bell_child, engine_factory, os.getpid()),
                name=f"framecast-rank-{rank}",
            )
            process.start()
            bell_child.close()
            processes.append(process)
            bells.append(bell_parent)
            logger.info("rank %d of %d started (pid %s)", rank, group.ranks, process.pid)
        return cls(processes, bells)

    def lost(self, wait: float) -> str | None:
        self._died.wait(wait)
        return self._dead

    def watch(self, worker: Any) -> None:
        """Watch the ranks on a thread: when one dies, stop ``worker`` (a ``Worker``) and, if its render does not
        end by itself, hand its job back and end this process."""
        threading.Thread(target=self._watch, args=(worker,), name="rank-watch", daemon=True).start()

    def _watch(self, worker: Any) -> None:
        sentinels = {process.sentinel: rank for rank, process in enumerate(self.processes, start=1)}
        ended = wait(list(sentinels))
        if self._stopping.is_set():
            return
        rank = sentinels[ended[0]]  # type: ignore[index]
        process = self.processes[rank - 1]
        process.join(1.0)
        self._dead = f"rank {rank} (pid {process.pid}) died (exit code {process.exitcode})"
        logger.error("%s; its GPU group stops", self._dead)
        worker.broken = self._dead
        self._died.set()
        if self._stopping.wait(ABANDON_AFTER_SECONDS):
            return
        worker.abandon(self._dead)  # rank 0 is stuck in a collective: hand back now, and leave
        self._kill_all()
        logging.shutdown()
        os._exit(1)

    def expect_exits(self) -> None:
        """From now on the other ranks end because rank 0 stops: no longer a death to act on."""
        self._stopping.set()

    def stop(self) -> None:
        """End the other ranks (dismissed already when rank 0 stops in order); kill those that linger."""
        self._stopping.set()
        for process in self.processes:
            process.join(DISMISS_SECONDS if process.is_alive() else 0)
        self._kill_all()
        for bell in self.bells:
            bell.close()

    def _kill_all(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join()


def follower_main(
    settings: Settings,
    group: GpuGroup,
    rank: int,
    port: int,
    bell: Connection,
    engine_factory: EngineFactory | None,
    leader_pid: int,
) -> None:
    """Rank ``rank`` (> 0): load the model, follow rank 0's orders until dismissed; die with rank 0.

    Signals are rank 0's to act on (it decides, and broadcasts, when every rank stops); a rank that fails
    mid-render exits 1, which ends the group."""
    _die_with(leader_pid)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    configure_logging(settings, f"rank{rank}")
    _limit_threads(group)
    engine = _ranked_engine(settings, group, rank, port, engine_factory, bell=bell)
    try:
        engine.load()
        engine.follow()
    except Exception:  # out of step with the other ranks: only a restart of the whole group mends it
        logger.exception("rank %d failed; its group stops", rank)
        code = 1
    else:
        engine.group.close()
        code = 0
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _die_with(leader_pid: int) -> None:
    """SIGKILL when rank 0 dies: a follower holds nothing to save, and must not hold its GPU."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != leader_pid:
        os._exit(0)


def _limit_threads(group: GpuGroup) -> None:
    # CPU ranks share the machine's cores: each takes its share, or they slow each other down by oversubscription.
    if group.device == "cpu":
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // group.ranks))


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
