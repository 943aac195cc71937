"""``framecast serve``: the API (uvicorn) in this process plus N worker child processes, supervised.

A worker is a separate process so that a crash of the model never takes the API down; a worker that dies is
restarted with a backoff (one that exits cleanly was told to stop, and is not). A worker that cannot load the
model's weights ends the whole server with the engine's one-sentence error, as restarting cannot help.
SIGINT/SIGTERM stop the API, then the workers (which put a running job back in the queue). With several
workers, each sees its own GPU (``gpu_for``).

Workers never outlive their ``serve``: each asks the kernel for SIGTERM when its parent dies (Linux
``PR_SET_PDEATHSIG``) and also watches a pipe whose other end only the parent holds, so a ``kill -9`` of the
server still ends in a graceful hand-back of every running job. A SIGTERM to the whole process group (systemd)
reaches the workers too and hands their jobs back the same way. Each worker slot holds a lock file under
``<data dir>/run``, so a new ``serve`` on the same data dir stops the orphans a dead one left before it starts
its own workers, and never runs more workers than asked.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import fcntl
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

from framecast.config import Settings
from framecast.errors import ConfigError, ModelUnavailableError
from framecast.gpus import GpuGroup, parse_gpus
from framecast.logs import configure_logging

logger = logging.getLogger(__name__)

EXIT_MODEL_UNAVAILABLE = 3
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_SECONDS = 60.0  # a worker that ran this long before dying restarts without backoff
SUPERVISE_EVERY_SECONDS = 0.5
SLOT_LOCK_SECONDS = 10.0  # how long a new worker waits for its slot's lock (its predecessor may be exiting)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

# Builds a worker's engine; must pickle (a module-level function or class), as workers are spawned processes.
EngineFactory = Callable[[Settings], Any]


def serve(settings: Settings, engine_factory: EngineFactory | None = None) -> None:
    """Run until SIGINT/SIGTERM. Raises ``ConfigError`` or ``ModelUnavailableError`` with one sentence.

    ``engine_factory`` (default: the engine ``settings.model`` names) is the seam for tests and benchmarks that
    need a worker engine with other parameters (``InstantEngine`` with a step delay)."""
    import uvicorn

    from framecast.api import create_app
    from framecast.api.connections import uvicorn_config

    # 1. Refuse an open API on a network address; take the port (a busy one is a one-line error, not a log);
    #    build the app (opens the database and storage).
    settings.check_bind_is_safe()
    sock = _bind(settings.host, settings.port)
    app = create_app(settings)
    json_logs = settings.log_format == "json"
    server = uvicorn.Server(
        uvicorn_config(
            app,
            settings,
            timeout_graceful_shutdown=5,
            # JSON logs: uvicorn's loggers go to ours, and AccessLog writes the access lines with the request id.
            log_config=None if json_logs else uvicorn.config.LOGGING_CONFIG,
            access_log=not json_logs,
        )
    )

    # 2. Start the workers (after stopping orphans of a server that died); a fatal worker error stops the API too.
    pool = WorkerPool(settings, engine_factory=engine_factory)
    pool.on_fatal = lambda: setattr(server, "should_exit", True)
    pool.start()

    # 3. Serve. uvicorn re-raises the signal it caught once it has stopped: ours takes it, so that the
    #    workers are stopped below instead of the process dying at once.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        pool.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if pool.fatal is not None:
        raise ModelUnavailableError(pool.fatal)


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _ignore(signum: int, frame: FrameType | None) -> None:
    pass


@dataclass
class _Slot:
    index: int
    process: BaseProcess | None = None
    conn: Connection | None = None
    watch: Connection | None = None  # the parent's end of the worker's watchdog pipe; never written
    started_at: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


@dataclass
class WorkerPool:
    """``settings.workers`` worker processes, restarted when they die, stopped together."""

    settings: Settings
    engine_factory: EngineFactory | None = None
    on_fatal: Any = None
    fatal: str | None = None
    _slots: list[_Slot] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _groups: list[GpuGroup | None] = field(default_factory=list)

    def start(self) -> None:
        """Spawn the workers; raises ``ConfigError`` when another live server runs workers on this data dir."""
        self._groups = worker_groups(self.settings)
        if not self._groups:
            return
        self._slots = [_Slot(i) for i in range(len(self._groups))]
        for slot in self._slots:
            clear_slot(self.settings, slot.index)
            self._spawn(slot)
        self._thread = threading.Thread(target=self._supervise, name="worker-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        alive = [s.process for s in self._slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            process.terminate()  # SIGTERM: the worker puts its running job back in the queue
        grace = self.settings.stop_grace_seconds
        deadline = time.monotonic() + grace
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("worker pid %s did not stop in %gs; killing it", process.pid, grace)
                process.kill()
                process.join()
        for slot in self._slots:
            if slot.watch is not None:
                slot.watch.close()

    def _spawn(self, slot: _Slot) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or sockets
        parent_conn, child_conn = context.Pipe(duplex=False)
        watch_child, watch_parent = context.Pipe(duplex=False)  # the child reads; EOF means we are gone
        group = self._groups[slot.index]
        if group is None:  # one device each: the old rule
            settings, gpu = self.settings, gpu_for(slot.index, len(self._groups), os.environ)
        else:  # the worker drives exactly its group (ranks.py sets CUDA_VISIBLE_DEVICES)
            settings, gpu = dataclasses.replace(self.settings, gpus=group.spec, group_size=0), None
        slot.process = context.Process(
            target=worker_main,
            args=(settings, child_conn, gpu),
            kwargs={
                "slot": slot.index,
                "parent_pid": os.getpid(),
                "watch": watch_child,
                "engine_factory": self.engine_factory,
            },
            name=f"framecast-worker-{slot.index}",
        )
        slot.process.start()
        child_conn.close()
        watch_child.close()
        if slot.watch is not None:
            slot.watch.close()
        slot.conn, slot.watch = parent_conn, watch_parent
        slot.started_at = time.monotonic()
        logger.info("worker %d started (pid %s)", slot.index, slot.process.pid)

    def _supervise(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY_SECONDS):
            for slot in self._slots:
                if self._check(slot):
                    return

    def _check(self, slot: _Slot) -> bool:
        """Restart a dead worker when its backoff has passed; ``True`` when the server must stop."""
        assert slot.process is not None
        now = time.monotonic()
        if slot.process.is_alive() or now < slot.restart_at:
            return False
        if slot.restart_at:  # its backoff has passed
            slot.restart_at = 0.0
            try:
                clear_slot(self.settings, slot.index)
            except ConfigError as exc:
                logger.error("worker %d not restarted: %s", slot.index, exc)
                slot.restart_at = now + RESTART_BACKOFF_SECONDS[-1]
                return False
            self._spawn(slot)
            return False
        code = slot.process.exitcode
        if code == 0:  # it was told to stop (e.g. Ctrl-C reached the whole process group): not a crash
            return False
        if code == EXIT_MODEL_UNAVAILABLE:
            self.fatal = _message(slot.conn) or "the model is not available"
            logger.info("worker %d cannot load the model; stopping the server", slot.index)
            if self.on_fatal is not None:
                self.on_fatal()
            return True
        if now - slot.started_at > STABLE_AFTER_SECONDS:
            slot.failures = 0
        delay = RESTART_BACKOFF_SECONDS[min(slot.failures, len(RESTART_BACKOFF_SECONDS) - 1)]
        slot.failures += 1
        logger.warning("worker %d exited with code %s; restarting in %gs", slot.index, code, delay)
        slot.restart_at = now + delay
        return False


def worker_groups(settings: Settings) -> list[GpuGroup | None]:
    """One entry per worker process: its GPU group (``--gpus``), or ``None`` (one device, ``gpu_for``)."""
    groups = parse_gpus(settings.gpus, settings.group_size)
    if not groups:
        return [None] * max(0, settings.workers)
    if settings.workers == 0:
        return []  # `framecast api`
    if settings.workers not in (1, len(groups)):
        raise ConfigError(
            f"--workers {settings.workers} and --gpus {settings.gpus} (group size {settings.group_size or 'all'}: "
            f"{len(groups)} group(s)) disagree; with --gpus there is one worker per group, so leave --workers out"
        )
    return list(groups)


def _message(conn: Connection | None) -> str | None:
    try:
        return conn.recv() if conn is not None and conn.poll() else None
    except (EOFError, OSError):
        return None


class _ModelUnavailableFilter(logging.Filter):
    """Takes the engine's sentence out of ``run_worker``'s log (it logs a ModelUnavailableError and exits),
    so that the caller can raise it and the user reads it once, as the command's one-line error."""

    def __init__(self) -> None:
        super().__init__()
        self.message: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if args and isinstance(args[0], ModelUnavailableError):
            self.message = str(args[0])
            return False
        return True


def worker(
    settings: Settings, engine_factory: EngineFactory | None = None, stop: threading.Event | None = None
) -> None:
    """One worker in this process (``framecast worker``), or the rank 0 of a GPU group (``--gpus``, ranks.py); a
    missing model raises ``ModelUnavailableError``."""
    from framecast.ranks import run_group  # the model stack loads in worker processes only

    worker_log = logging.getLogger("framecast.worker")
    unavailable = _ModelUnavailableFilter()
    worker_log.addFilter(unavailable)
    try:
        run_group(settings, engine_factory, stop)
    except SystemExit:
        if unavailable.message is None:
            raise
        raise ModelUnavailableError(unavailable.message) from None
    finally:
        worker_log.removeFilter(unavailable)


def gpu_for(index: int, workers: int, environ: Mapping[str, str]) -> str | None:
    """The GPU(s) worker ``index`` of ``workers`` may see: one each, from CUDA_VISIBLE_DEVICES when it lists
    enough devices, else by number. ``None`` (leave it alone) for one worker or too few listed devices."""
    if workers <= 1:
        return None
    listed = [d.strip() for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if not listed:
        return str(index) if "CUDA_VISIBLE_DEVICES" not in environ else None
    return listed[index] if len(listed) >= workers else None


def worker_main(
    settings: Settings,
    conn: Connection | None = None,
    gpu: str | None = None,
    *,
    slot: int | None = None,
    parent_pid: int | None = None,
    watch: Connection | None = None,
    engine_factory: EngineFactory | None = None,
) -> None:
    """Entry point of a worker child: run jobs; on a missing model, tell the parent why and exit 3.

    1. Die with the parent (parent-death signal, and a watchdog on ``watch``); 2. hold the slot's lock for life;
    3. run jobs until SIGTERM, SIGINT or the parent's death, handing a running job back."""
    if gpu is not None:  # before anything imports torch
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    configure_logging(settings, "worker")
    stop = threading.Event()
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    if watch is not None:
        gone = partial(_parent_gone, stop, settings.stop_grace_seconds)
        threading.Thread(target=watch_parent, args=(watch, gone), name="watchdog", daemon=True).start()
    if slot is not None:
        _hold_slot(settings, slot, parent_pid or os.getppid())
    try:
        worker(settings, engine_factory, stop)
    except ModelUnavailableError as exc:
        if conn is not None:
            conn.send(str(exc))
        logging.shutdown()
        # Straight out: a half-imported model stack can take seconds to tear down, and holds nothing to save.
        os._exit(EXIT_MODEL_UNAVAILABLE)
    # Stopped, its job handed back and the store closed: nothing is left to save, and tearing a model stack down
    # can take seconds that a server killed -9 (whose restart wants the slot) should not wait for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# -- supervision: the worker's side --------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux for SIGTERM (a graceful stop) when the parent dies; if it already has, stop now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            logger.warning(
                "prctl(PR_SET_PDEATHSIG) failed (errno %d); the pipe watchdog remains", ctypes.get_errno()
            )
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        logger.warning("the server (pid %d) is gone; this worker exits", parent_pid)
        os._exit(0)


def watch_parent(watch: Connection, gone: Callable[[], None]) -> None:
    """Block on a pipe only the parent can write to; EOF means the parent died, however it died: call ``gone``."""
    with contextlib.suppress(EOFError, OSError):
        watch.recv()
    gone()


def _parent_gone(stop: threading.Event, grace: float) -> None:
    """Stop gracefully (hand the running job back), and leave for good after ``grace`` seconds: no parent is left
    to send SIGKILL."""
    logger.warning("the server is gone; handing the running job back and exiting")
    stop.set()
    time.sleep(grace)
    logger.error("the hand-back did not finish within %g s; exiting anyway", grace)
    logging.shutdown()
    os._exit(1)


def _hold_slot(settings: Settings, slot: int, serve_pid: int) -> None:
    """Take the slot's lock for the life of this process (the kernel drops it when the process ends)."""
    path = slot_lock_path(settings, slot)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + SLOT_LOCK_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                logger.error("worker slot %d is held by another process (%s); exiting", slot, path)
                os._exit(1)
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {serve_pid}\n".encode(), 0)
    # fd stays open (and locked) until this process exits; it is not inherited by exec'd children (PEP 446).


# -- supervision: the server's side --------------------------------------------------------------------------


def slot_lock_path(settings: Settings, slot: int) -> Path:
    folder = Path(settings.data_dir) / "run"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"worker-{slot}.lock"


def slot_holder(settings: Settings, slot: int) -> tuple[int, int] | None:
    """(worker pid, its server's pid) of the process holding the slot's lock; ``None`` when it is free."""
    fd = os.open(slot_lock_path(settings, slot), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            words = os.pread(fd, 64, 0).decode(errors="replace").split()
            pids = [int(w) for w in words if w.isdigit()]
            return (pids[0], pids[1] if len(pids) > 1 else 0) if pids else (0, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def clear_slot(settings: Settings, slot: int) -> None:
    """Make the slot free for a new worker: stop an orphan holding it (SIGTERM: it hands its job back; SIGKILL
    after the grace). Raises ``ConfigError`` when the holder belongs to another live server."""
    holder = slot_holder(settings, slot)
    if holder is None:
        return
    pid, serve_pid = holder
    if serve_pid not in (0, os.getpid()) and _alive(serve_pid) and _parent_of(pid) == serve_pid:
        raise ConfigError(
            f"another framecast server (pid {serve_pid}) runs workers on data dir {settings.data_dir}; "
            "stop it first or use another FRAMECAST_DATA_DIR"
        )
    logger.warning("worker slot %d is held by pid %d, left by a server that is gone; stopping it", slot, pid)
    _signal(pid, signal.SIGTERM)
    if _wait_free(settings, slot, settings.stop_grace_seconds):
        return
    logger.warning("pid %d did not stop in %gs; killing it", pid, settings.stop_grace_seconds)
    _signal(pid, signal.SIGKILL)
    if not _wait_free(settings, slot, SLOT_LOCK_SECONDS):
        raise ConfigError(f"worker slot {slot} stays locked; is another server using this data dir?")


def _wait_free(settings: Settings, slot: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while slot_holder(settings, slot) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parent_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state letter


def _signal(pid: int, sig: int) -> None:
    if pid > 0:  # 0: a holder that never wrote its pid; signalling 0 would hit our own group
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
