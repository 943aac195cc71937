"""``framecast serve``: the API (uvicorn) in this process plus N worker child processes, supervised.

A worker is a separate process so that a crash of the model never takes the API down; a worker that dies is
restarted with a backoff (one that exits cleanly was told to stop, and is not). A worker that cannot load the
model's weights ends the whole server with the engine's one-sentence error, as restarting cannot help.
SIGINT/SIGTERM stop the API, then the workers (which put a running job back in the queue). With several
workers, each sees its own GPU (``gpu_for``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from framecast.config import Settings
from framecast.errors import ConfigError, ModelUnavailableError

logger = logging.getLogger(__name__)

EXIT_MODEL_UNAVAILABLE = 3
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_SECONDS = 60.0  # a worker that ran this long before dying restarts without backoff
STOP_GRACE_SECONDS = 20.0
SUPERVISE_EVERY_SECONDS = 0.5


def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Raises ``ConfigError`` or ``ModelUnavailableError`` with one sentence."""
    import uvicorn

    from framecast.api import create_app
    from framecast.api.connections import uvicorn_config

    # 1. Refuse an open API on a network address; take the port (a busy one is a one-line error, not a log);
    #    build the app (opens the database and storage).
    settings.check_bind_is_safe()
    sock = _bind(settings.host, settings.port)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn_config(app, settings, timeout_graceful_shutdown=5))

    # 2. Start the workers; a fatal worker error stops the API too.
    pool = WorkerPool(settings)
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
    started_at: float = 0.0
    failures: int = 0
    restart_at: float = 0.0


@dataclass
class WorkerPool:
    """``settings.workers`` worker processes, restarted when they die, stopped together."""

    settings: Settings
    on_fatal: Any = None
    fatal: str | None = None
    _slots: list[_Slot] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self.settings.workers <= 0:
            return
        self._slots = [_Slot(i) for i in range(self.settings.workers)]
        for slot in self._slots:
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
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning(
                    "worker pid %s did not stop in %gs; killing it", process.pid, STOP_GRACE_SECONDS
                )
                process.kill()
                process.join()

    def _spawn(self, slot: _Slot) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or sockets
        parent_conn, child_conn = context.Pipe(duplex=False)
        slot.process = context.Process(
            target=worker_main,
            args=(self.settings, child_conn, gpu_for(slot.index, self.settings.workers, os.environ)),
            name=f"framecast-worker-{slot.index}",
        )
        slot.process.start()
        child_conn.close()
        slot.conn = parent_conn
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


def worker(settings: Settings) -> None:
    """One worker in this process (``framecast worker``); a missing model raises ``ModelUnavailableError``."""
    from framecast.worker import run_worker  # the model stack loads in worker processes only

    worker_log = logging.getLogger("framecast.worker")
    unavailable = _ModelUnavailableFilter()
    worker_log.addFilter(unavailable)
    try:
        run_worker(settings)
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


def worker_main(settings: Settings, conn: Connection | None = None, gpu: str | None = None) -> None:
    """Entry point of a worker child: run jobs; on a missing model, tell the parent why and exit 3."""
    if gpu is not None:  # before anything imports torch
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s"
    )
    try:
        worker(settings)
    except ModelUnavailableError as exc:
        if conn is not None:
            conn.send(str(exc))
        logging.shutdown()
        # Straight out: a half-imported model stack can take seconds to tear down, and holds nothing to save.
        os._exit(EXIT_MODEL_UNAVAILABLE)
