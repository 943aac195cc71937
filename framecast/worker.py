"""The worker: claim a job, render it with the engine, store the MP4, complete the job; repeat.

The model is loaded once and kept warm. Each claimed job runs under a lease renewed by a heartbeat thread;
its ``attempt`` fences every write, so a worker that lost its lease cannot overwrite the result of the one
that took over. Cancel and shutdown are cooperative: the engine asks ``ctx.should_stop()`` between steps, and
a stopping worker hands its job back (``release``) without using up one of its attempts.

Every store call goes through ``StoreRetry``: a database outage shorter than ``FRAMECAST_STORE_RETRY_SECONDS``
pauses the render (its next log line or heartbeat waits) instead of abandoning it, and is logged once.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from framecast.config import Settings
from framecast.engine.base import Engine, RenderResult
from framecast.errors import FramecastError, InputError, ModelUnavailableError, OutOfSpace, RenderStopped
from framecast.housekeeping import delete_expired
from framecast.jobs.database import utcnow
from framecast.jobs.models import Job, JobStatus
from framecast.jobs.retry import StoreRetry, is_disk_full, is_transient
from framecast.jobs.store import (
    CANCELLED_MESSAGE,
    CANCELLED_STATUS,
    CANCELLED_TYPE,
    TIMEOUT_MESSAGE,
    TIMEOUT_STATUS,
    TIMEOUT_TYPE,
    JobStore,
)
from framecast.schema import File, TextToVideoInput, TextToVideoOutput
from framecast.storage import Storage, new_output_key, storage_for
from framecast.telemetry import StepClock, WorkerStats

__all__ = ["JobContext", "Worker", "run_worker"]

logger = logging.getLogger(__name__)

EngineFactory = Callable[[Settings], Engine]

RANK_LOST_WAIT_SECONDS = 5.0  # how long a failed render waits to learn whether a rank of its group died


class RankWatch(Protocol):
    """Rank 0's view of the other ranks of its GPU group (ranks.py)."""

    def lost(self, wait: float) -> str | None:
        """Why a rank died (within ``wait`` seconds), or ``None`` while they all live."""
        ...


OUT_OF_SPACE_STATUS = 507  # HTTP's Insufficient Storage: the server's fault, and it may pass


class JobContext:
    """The engine's ``RenderContext`` for one claimed job: logs go to the job, stop reasons from the store.

    ``should_stop`` answers ``"lease_lost"`` (another worker owns the job now), ``"cancelled"`` (the user
    asked) or ``"shutdown"`` (this worker is stopping); a started job has no deadline, so never
    ``"request_timeout"``.
    """

    def __init__(
        self,
        store: JobStore,
        job: Job,
        stop: threading.Event,
        retry: StoreRetry | None = None,
        steps: StepClock | None = None,
    ) -> None:
        self.store = store
        self.job = job
        self.stop = stop
        self.retry = retry or StoreRetry(0.0)
        self.lease_lost = threading.Event()
        self.step, self.total = 0, 0
        self._steps = steps

    def log(self, message: str, level: str = "INFO") -> None:
        self.retry(self.store.append_log, self.job.id, message, level)

    def progress(self, step: int, total: int) -> None:
        # Engines write their own "step i/N" log lines (ctx.log); logging here too would double them.
        self.step, self.total = step, total
        if self._steps is not None:
            self._steps.tick(step)

    def should_stop(self) -> str | None:
        if self.lease_lost.is_set():
            return "lease_lost"
        if self.retry(self.store.cancel_requested, self.job.id, self.job.attempt):
            return "cancelled"
        if self.stop.is_set():
            return "shutdown"
        return None


@contextmanager
def heartbeat(store: JobStore, ctx: JobContext, lease_seconds: float, every: float) -> Iterator[None]:
    """Renew the job's lease on a thread while the body runs; a refused renewal sets ``ctx.lease_lost``."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(every):
            try:
                if not ctx.retry(store.heartbeat, ctx.job.id, ctx.job.attempt, lease_seconds):
                    ctx.lease_lost.set()
                    return
            except Exception as exc:  # past the retry budget: the lease decides; StoreRetry said why
                if not is_transient(exc):
                    logger.exception("heartbeat for %s failed", ctx.job.id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{ctx.job.id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class Worker:
    """One engine, one job at a time. ``ranks``: the other ranks of this worker's GPU group, when it has some;
    once one dies (or the engine reports its ranks out of step, ``engine.broken``) the worker stops, ``broken``
    says why, and its group must restart."""

    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        storage: Storage,
        engine: Engine,
        ranks: RankWatch | None = None,
    ) -> None:
        self.settings = settings
        self.ranks = ranks
        self.broken: str | None = None
        self.current: Job | None = None
        self.store = store
        self.storage = storage
        self.engine = engine
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.work_dir = Path(settings.data_dir) / "work"
        self.retry = StoreRetry(settings.store_retry_seconds, logger)
        self.stats = WorkerStats(getattr(engine, "name", type(engine).__name__))
        self._next_housekeeping = 0.0
        self._next_report = 0.0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set() and self.broken is None:
            try:
                worked = self.run_once(stop)
            except Exception as exc:  # the loop boundary: a database fault must not end the worker
                if not is_transient(exc):  # StoreRetry has said the database is down, once
                    logger.exception("worker loop error")
                worked = False
            if not worked:
                self.store.wait_for_work(self.settings.poll_seconds, stop)
        self._forget_report()

    def run_once(self, stop: threading.Event | None = None) -> bool:
        """Housekeeping and a metrics report when due, then claim and process one job; returns whether there
        was one."""
        now = time.monotonic()
        if now >= self._next_report:
            self._next_report = now + self.settings.heartbeat_seconds
            self.report()
        if now >= self._next_housekeeping:
            self.housekeeping()
            self._next_housekeeping = time.monotonic() + self.settings.heartbeat_seconds
        job = self.retry(self.store.claim, self.worker_id, self.settings.lease_seconds)
        if job is None:
            return False
        if job.started_at is not None:
            self.stats.queue_wait_seconds.observe((job.started_at - job.created_at).total_seconds())
        self.stats.job_id, self.current = job.id, job
        try:
            self.process(job, stop or threading.Event())
        finally:
            self.stats.job_id, self.current = None, None
        self.broken = self.broken or getattr(self.engine, "broken", None)
        return True

    def report(self) -> None:
        """Write this worker's metrics to its ``workers`` row (read by the API's /metrics); best effort."""
        try:
            self.store.report_worker(self.worker_id, self.stats.report())
        except Exception as exc:  # metrics never stop a worker; StoreRetry reports outages for the real work
            if not is_transient(exc):
                logger.exception("worker report failed")

    def _forget_report(self) -> None:
        try:
            self.store.forget_worker(self.worker_id)  # a stopped worker leaves no stale series
        except Exception as exc:
            logger.info("could not remove this worker's report: %s", exc)

    def housekeeping(self) -> None:
        """Recover jobs of dead workers; delete expired files and requests (housekeeping.py) and renders dead
        workers left."""
        reaped = self.retry(self.store.reap)
        if reaped:
            logger.info("reaped %d job(s)", reaped)
        self.retry(delete_expired, self.store, self.storage, self.settings.retention_days)
        self._remove_abandoned_renders()

    def _remove_abandoned_renders(self) -> None:
        # A worker killed while encoding leaves <job id>-a<attempt>.mp4 in the shared work folder; other
        # workers may be writing theirs, so only files of attempts no longer running go.
        for path in self.work_dir.glob("*-a*.mp4"):
            job_id, _, attempt = path.stem.rpartition("-a")
            job = self.store.get(job_id)
            running = job is not None and job.status is JobStatus.IN_PROGRESS and str(job.attempt) == attempt
            if not running:
                path.unlink(missing_ok=True)

    def process(self, job: Job, stop: threading.Event) -> None:
        """Run one claimed job to its end; every exception becomes the job's error."""
        logger.info("job %s: attempt %d", job.id, job.attempt)
        ctx = JobContext(self.store, job, stop, self.retry, StepClock(self.stats))
        started = time.monotonic()
        try:
            key, output = self._render_and_store(job, ctx)
        except RenderStopped as exc:
            self._stopped(job, ctx, exc.reason)
            return
        except InputError as exc:
            self._fail(job, ctx, str(exc), exc.error_type, 422)
            return
        except Exception as exc:  # the job boundary
            lost = self.ranks.lost(RANK_LOST_WAIT_SECONDS) if self.ranks is not None else None
            if lost is not None:  # not the request's fault: the collective it was in lost a peer
                self._rank_lost(job, ctx, lost)
            elif is_disk_full(exc):  # said plainly: the errno text names a server path
                logger.error("job %s failed: no space left on device (%s)", job.id, exc)
                self._fail(job, ctx, str(OutOfSpace()), OutOfSpace.error_type, OUT_OF_SPACE_STATUS)
            elif isinstance(exc, FramecastError):
                logger.exception("job %s failed", job.id)
                self._fail(job, ctx, str(exc), exc.error_type, 500)
            else:
                logger.exception("job %s failed", job.id)
                self._fail(job, ctx, user_message(exc), "internal_error", 500)
            return
        if not self.retry(self.store.complete, job.id, job.attempt, output):
            logger.warning("job %s: lease lost before completion; result discarded", job.id)
            self.stats.ended("lease_lost")
            self.storage.delete(key)
            self.retry(self.store.forget_file, key)
            return
        self.stats.ended("completed")
        resolution = str((job.input or {}).get("resolution", "unknown"))
        self.stats.render_seconds.labels(preset=self.stats.engine_name, resolution=resolution).observe(
            time.monotonic() - started
        )

    def _render_and_store(self, job: Job, ctx: JobContext) -> tuple[str, dict[str, Any]]:
        # 1. Check the input (the API validated it; a row written by an older release may not pass).
        try:
            request = TextToVideoInput.model_validate(job.input or {})
        except ValidationError as exc:
            raise InputError(f"invalid input: {exc.errors()[0]['msg']}") from exc
        self.work_dir.mkdir(parents=True, exist_ok=True)
        out_path = self.work_dir / f"{job.id}-a{job.attempt}.mp4"
        lease = heartbeat(self.store, ctx, self.settings.lease_seconds, self.settings.heartbeat_seconds)
        try:
            with lease:
                # 2. Render; the engine polls ctx.should_stop() between steps.
                result = self.engine.render(request, ctx, out_path)
                if ctx.lease_lost.is_set():
                    raise RenderStopped("lease_lost")
                # 3. Record the file (pending until completed: see JobStore.record_file), then store it, with
                #    its expiry (X-Fal-Object-Lifecycle-Preference).
                key = new_output_key(job.id, job.attempt)
                expires = None
                if job.file_ttl_seconds is not None:
                    expires = utcnow() + timedelta(seconds=job.file_ttl_seconds)
                self.retry(self.store.record_file, job.id, job.attempt, key, expires)
                size = self.storage.put(key, result.path, "video/mp4")
        finally:
            out_path.unlink(missing_ok=True)
        # 4. The output, checked against the endpoint's contract; a file no output points to is not kept.
        try:
            return key, self._output(
                result, self.storage.url(key, job.base_url or self.settings.public_url), key, size
            )
        except Exception:
            self.storage.delete(key)
            self.retry(self.store.forget_file, key)
            raise

    def _output(self, result: RenderResult, url: str, key: str, size: int) -> dict[str, Any]:
        video = File(url=url, content_type="video/mp4", file_name=key.rsplit("/", 1)[-1], file_size=size)
        output = TextToVideoOutput.model_validate(
            {
                "video": video,
                "seed": result.seed,
                "prompt": result.prompt,
                "shots": result.shots,
                "upscaled": result.extra.get("upscaled"),
            }
        )
        return output.model_dump(mode="json", exclude_none=True)

    def _stopped(self, job: Job, ctx: JobContext, reason: str) -> None:
        if reason == "cancelled":
            self.stats.ended("cancelled", CANCELLED_TYPE)
            fail = self.store.fail
            if self.retry(fail, job.id, job.attempt, CANCELLED_MESSAGE, CANCELLED_TYPE, CANCELLED_STATUS):
                ctx.log("Cancelled by the user.", "WARN")
        elif reason == "request_timeout":
            self._fail(job, ctx, TIMEOUT_MESSAGE, TIMEOUT_TYPE, TIMEOUT_STATUS)
        elif reason == "shutdown":
            self.stats.ended("released")
            if self.retry(self.store.release, job.id, job.attempt):
                logger.info("job %s: handed back to the queue", job.id)
        else:
            self.stats.ended(reason)
            logger.warning("job %s: attempt %d stopped (%s)", job.id, job.attempt, reason)

    def _rank_lost(self, job: Job, ctx: JobContext, why: str) -> None:
        self.broken = why
        self.stats.ended("rank_lost")
        logger.error("job %s: %s; handing it back, and this GPU group stops to restart", job.id, why)
        ctx.log(f"{why}: the GPU group restarts and the request goes back to the queue", "WARN")
        self.retry(self.store.crashed, job.id, job.attempt)

    def abandon(self, why: str) -> None:
        """Hand the running job back as a crash from another thread, when the render cannot end by itself (a
        collective waiting on a dead rank); fenced by the attempt, so it counts once whoever gets there first."""
        self.broken = why
        job = self.current
        if job is not None and self.store.crashed(job.id, job.attempt):
            logger.error("job %s: %s; handed back to the queue", job.id, why)

    def _fail(self, job: Job, ctx: JobContext, error: str, error_type: str, status: int) -> None:
        self.stats.ended("failed", error_type)
        if self.retry(self.store.fail, job.id, job.attempt, error, error_type, status):
            ctx.log(f"Failed: {error}", "ERROR")


def user_message(exc: BaseException) -> str:
    """An unexpected error as the job's error: its type and message, but for an OS error only the errno's text,
    never the path it names (the caller must not learn the server's file layout)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__}: {exc.strerror or errno.errorcode.get(exc.errno, exc.errno)}"
    return f"{type(exc).__name__}: {exc}"


def _default_engine(settings: Settings) -> Engine:
    from framecast.engine import create_engine  # torch and diffusers load here, never in the API process

    return create_engine(settings)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def graceful(signum: int, _frame: Any) -> None:
        stop.set()
        # A second Ctrl-C is not graceful. A second SIGTERM is: systemd signals the whole group and `serve` then
        # signals its workers too, and both must end in a hand-back (serve escalates to SIGKILL after its grace).
        if signum == signal.SIGINT:
            signal.signal(signum, previous[signum])

    for sig in previous:
        signal.signal(sig, graceful)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_worker(
    settings: Settings,
    engine_factory: EngineFactory | None = None,
    stop: threading.Event | None = None,
    ranks: RankWatch | None = None,
    on_ready: Callable[[Worker], None] | None = None,
) -> None:
    """Serve jobs until ``stop`` is set or SIGTERM/SIGINT arrives; a running job is put back in the queue.

    Exits the process (``SystemExit(1)``) with one log line when the model's weights are not available, and
    (``SystemExit(1)`` too) when a rank of its GPU group died: the group must restart.
    """
    stop = stop or threading.Event()
    # 1. Open the queue and the file store.
    store = JobStore.from_settings(settings)
    try:
        storage = storage_for(settings)
        # 2. Load the model once; it stays warm for every job.
        try:
            engine = (engine_factory or _default_engine)(settings)
            engine.load()
        except ModelUnavailableError as exc:
            logger.error("%s", exc)
            raise SystemExit(1) from None
        logger.info("worker ready: engine %s", getattr(engine, "name", type(engine).__name__))
        # 3. Drain the queue.
        worker = Worker(settings, store, storage, engine, ranks)
        if on_ready is not None:
            on_ready(worker)
        with _stop_on_signals(stop):
            worker.run(stop)
        if worker.broken is not None:
            logger.error("worker stopped: %s", worker.broken)
            raise SystemExit(1)
    finally:
        store.close()
