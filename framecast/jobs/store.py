"""The durable job queue: one SQL table of jobs, their logs, output files and a webhook outbox.

SQLAlchemy Core on SQLite (WAL) by default and PostgreSQL when distributed; the dialect switch lives in
``database.py``, the webhook outbox in ``outbox.py``. The job status is a state machine (``TRANSITIONS``):
each transition is one conditional UPDATE on the expected status and attempt, and ``attempt`` is the fencing
token that stops a worker whose lease was taken over from writing a result. Public methods are thread-safe:
one engine, one connection per call.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Row, and_, bindparam, func, insert, or_, select, update

from framecast.errors import QueueFull
from framecast.jobs.database import connect, utcnow
from framecast.jobs.files import StoreFiles
from framecast.jobs.migrations import migrate
from framecast.jobs.models import CancelOutcome, Job, JobStatus, LogEntry, NewJob, QueueLimits
from framecast.jobs.tables import RawJobReader, files, job_from_row, job_logs, jobs, load_job

if TYPE_CHECKING:
    from framecast.config import Settings

__all__ = ["JobStore", "utcnow"]

QUEUED, RUNNING, DONE = JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS, JobStatus.COMPLETED

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    QUEUED: frozenset({RUNNING, DONE}),  # claimed; cancelled or past its start deadline
    RUNNING: frozenset({DONE, QUEUED}),  # completed or failed; lease expired or worker stopped: back in line
    DONE: frozenset(),  # final: status must stay stable once a client has seen COMPLETED
}

CANCELLED_MESSAGE = "Request cancelled by the user"
CANCELLED_TYPE = "request_cancelled"
CANCELLED_STATUS = 400  # the client's own doing, not a server fault; fal's cancel route also speaks 400
TIMEOUT_MESSAGE = "The request was not started within its X-Fal-Request-Timeout"
TIMEOUT_TYPE = "request_timeout"
TIMEOUT_STATUS = 504
WORKER_LOST_TYPE = "worker_lost"
WORKER_LOST_STATUS = 500
NO_RETRY_MESSAGE = (
    "The worker rendering this request stopped, and the request asked not to be run again (X-Fal-No-Retry)"
)
QUEUE_FULL_RETRY_AFTER = 10  # seconds: about one short render, the soonest a place in line is likely to free


def _ahead_of(me: Any, other: Any) -> Any:
    """``other`` is a queued job that runs before ``me``: the claim order (priority, turn, seq)."""
    return and_(
        other.c.status == QUEUED.value,
        or_(
            other.c.priority < me.c.priority,
            and_(other.c.priority == me.c.priority, other.c.turn < me.c.turn),
            and_(other.c.priority == me.c.priority, other.c.turn == me.c.turn, other.c.seq < me.c.seq),
        ),
    )


# Built once: Python clients poll status every 100 ms, and building these anew cost more than running them.
_me, _other, _running = jobs.alias("me"), jobs.alias("other"), jobs.alias("running")
_QUEUE_POSITION = (
    select(func.count(_other.c.seq))
    .select_from(_me.outerjoin(_other, _ahead_of(_me, _other)))
    .where(_me.c.id == bindparam("job_id"), _me.c.status == QUEUED.value)
    .group_by(_me.c.seq)
)
# The job and, in the same read, how many queued jobs are ahead of it (meaningful while it is queued).
_JOB_WITH_POSITION = select(
    jobs,
    select(func.count(_other.c.seq)).where(_ahead_of(jobs, _other)).scalar_subquery().label("ahead"),
).where(jobs.c.id == bindparam("job_id"))


class IllegalTransition(ValueError):
    pass


class JobStore(StoreFiles):
    """Enqueue, claim with a lease, heartbeat, complete or fail, cancel, reap, logs, files and webhooks.

    Fair claiming: within a priority, jobs run in order of ``turn``, then arrival. A key's first waiting job
    takes the turn at the head of the line and each further one the turn after its previous, so keys take turns
    (start-time fair queueing): a key's first job waits behind at most one job of each other waiting key,
    however long their backlogs. A requeued job keeps its turn and so goes back to the front.
    """

    def __init__(self, engine: Engine, *, max_attempts: int = 3, limits: QueueLimits | None = None) -> None:
        super().__init__(engine)
        self.max_attempts = max_attempts
        self.limits = limits or QueueLimits()
        self._raw_load = RawJobReader(engine.dialect)

    @classmethod
    def open(cls, database_url: str, *, max_attempts: int = 3, limits: QueueLimits | None = None) -> JobStore:
        engine = connect(database_url)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, max_attempts=max_attempts, limits=limits)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobStore:
        limits = QueueLimits(
            max_queued_per_key=settings.max_queued_per_key,
            max_queued=settings.max_queued,
            max_running_per_key=settings.max_running_per_key,
        )
        return cls.open(settings.database_url, max_attempts=settings.max_attempts, limits=limits)

    # -- jobs -----------------------------------------------------------------------------------------------

    def enqueue(self, new: NewJob) -> Job:
        """Queue a job; raises ``QueueFull`` when a queue limit refuses it."""
        now = utcnow()
        deadline = None
        if new.start_timeout_seconds is not None:
            deadline = now + timedelta(seconds=new.start_timeout_seconds)
        job_id = str(uuid.uuid4())
        with self._write() as conn:
            self._check_limits(conn, new.owner)
            conn.execute(
                insert(jobs).values(
                    id=job_id,
                    endpoint=new.endpoint,
                    owner=new.owner,
                    status=QUEUED.value,
                    priority=int(new.priority),
                    input=new.input,
                    output=None,
                    attempt=0,
                    cancel_requested=False,
                    webhook_url=new.webhook_url,
                    store_io=new.store_io,
                    file_ttl_seconds=new.file_ttl_seconds,
                    base_url=new.base_url,
                    created_at=now,
                    start_deadline=deadline,
                    crashes=0,
                    no_retry=new.no_retry,
                    turn=self._next_turn(conn, new.owner, int(new.priority)),
                )
            )
            self.wake_workers(conn)
            return load_job(conn, job_id)  # type: ignore[return-value]

    def _check_limits(self, conn: Connection, owner: str) -> None:
        # Counted up to the limit only, on an index: the check costs the same at any queue depth. Exact on SQLite
        # (writes are serialised); on PostgreSQL concurrent submits may pass a limit by the number in flight.
        per_key, overall = self.limits.max_queued_per_key, self.limits.max_queued
        queued = jobs.c.status == QUEUED.value
        if per_key and _count_upto(conn, per_key, queued, jobs.c.owner == owner) >= per_key:
            raise QueueFull(
                f"This API key already has {per_key} requests waiting in the queue, its limit; "
                "retry when some have started",
                QUEUE_FULL_RETRY_AFTER,
            )
        if overall and _count_upto(conn, overall, queued) >= overall:
            raise QueueFull(
                f"The queue is full ({overall} requests waiting); retry later", QUEUE_FULL_RETRY_AFTER
            )

    @staticmethod
    def _next_turn(conn: Connection, owner: str, priority: int) -> int:
        """The head of the line's turn for a key's first waiting job, else one after its last (see the class)."""
        in_line = (jobs.c.status == QUEUED.value, jobs.c.priority == priority)
        last = conn.execute(select(func.max(jobs.c.turn)).where(*in_line, jobs.c.owner == owner)).scalar()
        if last is not None:
            return int(last) + 1
        head = conn.execute(select(func.min(jobs.c.turn)).where(*in_line)).scalar()
        return int(head or 0)

    def get(self, job_id: str) -> Job | None:
        if self.reads_are_local:  # status polls: the hot path
            return self._raw_load(self._raw_cursor(), job_id)
        with self._read() as conn:
            return load_job(conn, job_id)

    def get_with_position(self, job_id: str) -> tuple[Job, int | None] | None:
        """The job and, while it is queued, its queue position, from one consistent read."""
        with self._read() as conn:
            row = conn.execute(_JOB_WITH_POSITION, {"job_id": job_id}).first()
        if row is None:
            return None
        job = job_from_row(row)
        return job, (row.ahead if job.status is QUEUED else None)

    def queue_position(self, job_id: str) -> int | None:
        """How many queued jobs run before this one; ``None`` when it is not queued."""
        with self._read() as conn:
            return conn.execute(_QUEUE_POSITION, {"job_id": job_id}).scalar()

    def claim(self, worker_id: str, lease_seconds: float) -> Job | None:
        """Take the next job in the fair order (priority, turn, arrival) under a lease, skipping keys at their
        running limit; ``attempt`` is its fencing token."""
        if not self._exists(select(jobs.c.seq).where(jobs.c.status == QUEUED.value)):
            return None  # idle workers poll often: don't take the write lock just to find nothing
        with self._write() as conn:
            now = utcnow()
            self._expire_unstarted(conn, now)
            query = (
                select(jobs.c.id, jobs.c.attempt)
                .where(jobs.c.status == QUEUED.value)
                .order_by(jobs.c.priority, jobs.c.turn, jobs.c.seq)
                .limit(1)
            )
            if limit := self.limits.max_running_per_key:
                self.serialize_claims(conn)  # two claimers must not both take a key's last running place
                busy = (
                    select(_running.c.owner)
                    .where(_running.c.status == RUNNING.value)
                    .group_by(_running.c.owner)
                    .having(func.count() >= limit)
                )
                query = query.where(jobs.c.owner.not_in(busy))
            row = conn.execute(self.lock_rows(query)).first()
            if row is None:
                return None
            claimed = self._transition(
                conn,
                row.id,
                row.attempt,
                QUEUED,
                RUNNING,
                attempt=row.attempt + 1,
                worker_id=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=now,
            )
            return load_job(conn, row.id) if claimed else None

    def heartbeat(self, job_id: str, attempt: int, lease_seconds: float) -> bool:
        """Extend the lease; ``False`` means this attempt no longer owns the job and must stop."""
        with self._write() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING.value, jobs.c.attempt == attempt)
                .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            )
            return result.rowcount == 1

    def complete(self, job_id: str, attempt: int, output: dict[str, Any]) -> bool:
        """Finish with ``output``; the attempt's pending files become the result's, in the same transaction."""
        with self._write() as conn:
            done = self._finish(conn, job_id, attempt, RUNNING, output=output)
            if done:
                conn.execute(
                    update(files)
                    .where(files.c.job_id == job_id, files.c.attempt == attempt)
                    .values(pending=False)
                )
            return done

    def fail(self, job_id: str, attempt: int, error: str, error_type: str, error_status: int) -> bool:
        with self._write() as conn:
            return self._finish(
                conn, job_id, attempt, RUNNING, error=error, error_type=error_type, error_status=error_status
            )

    def release(self, job_id: str, attempt: int) -> bool:
        """Put a running job back in line at once (its worker is shutting down). A hand-back is no crash: it
        uses none of the job's ``max_attempts``; ``attempt`` (the fencing token) moves on at the next claim."""
        with self._write() as conn:
            released = self._transition(
                conn, job_id, attempt, RUNNING, QUEUED, worker_id=None, lease_expires_at=None
            )
            if released:
                self._log(conn, job_id, "The worker stopped; the request is back in the queue.", "WARN")
                self.wake_workers(conn)
            return released

    def cancel(self, job_id: str) -> CancelOutcome:
        """Queued: completed at once as cancelled. Running: flagged; the worker stops within one step."""
        with self._write() as conn:
            row = conn.execute(select(jobs.c.status, jobs.c.attempt).where(jobs.c.id == job_id)).first()
            if row is None:
                return CancelOutcome.NOT_FOUND
            if row.status == DONE.value:
                return CancelOutcome.ALREADY_COMPLETED
            if row.status == QUEUED.value:
                self._finish_cancelled(conn, job_id, row.attempt, QUEUED)
                return CancelOutcome.CANCELLATION_REQUESTED
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING.value, jobs.c.attempt == row.attempt)
                .values(cancel_requested=True)
            )
            self._log(conn, job_id, "Cancellation requested; stopping after the current step.")
            return CancelOutcome.CANCELLATION_REQUESTED

    def cancel_requested(self, job_id: str, attempt: int) -> bool:
        with self._read() as conn:
            flag = conn.execute(
                select(jobs.c.cancel_requested).where(jobs.c.id == job_id, jobs.c.attempt == attempt)
            ).scalar()
            return bool(flag)

    def reap(self) -> int:
        """End queued jobs past their start deadline and recover running jobs whose lease expired.

        A job whose worker vanished goes back in line while it has attempts left, else it completes with
        error_type ``worker_lost``. Returns how many jobs changed.
        """
        with self._write() as conn:
            now = utcnow()
            changed = self._expire_unstarted(conn, now)
            rows = conn.execute(
                select(
                    jobs.c.id, jobs.c.attempt, jobs.c.cancel_requested, jobs.c.crashes, jobs.c.no_retry
                ).where(jobs.c.status == RUNNING.value, jobs.c.lease_expires_at < now)
            ).all()
            for row in rows:
                changed += self._recover(conn, row)
            if rows:
                self.wake_workers(conn)  # recovered jobs are back in line
            return changed

    def crashed(self, job_id: str, attempt: int) -> bool:
        """The worker of this attempt lost part of itself (a rank of its GPU group died) and hands the job back
        now instead of letting its lease expire: recovered as ``reap`` recovers it, one crash counted. Fenced by
        ``attempt``, so a later ``reap`` (or a second call) cannot count the same crash again."""
        with self._write() as conn:
            row = conn.execute(
                select(
                    jobs.c.id, jobs.c.attempt, jobs.c.cancel_requested, jobs.c.crashes, jobs.c.no_retry
                ).where(jobs.c.id == job_id, jobs.c.status == RUNNING.value, jobs.c.attempt == attempt)
            ).first()
            if row is None:
                return False
            changed = self._recover(conn, row)
            self.wake_workers(conn)
            return bool(changed)

    def forget_payloads(self, job_id: str) -> bool:
        """X-Fal-Store-IO: 0 — drop a finished job's input and output once delivered; keep its error."""
        with self._write() as conn:
            result = conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == DONE.value)
                .values(input=None, output=None)
            )
            return result.rowcount == 1

    # -- logs -----------------------------------------------------------------------------------------------

    def append_log(self, job_id: str, message: str, level: str = "INFO") -> None:
        with self._write() as conn:
            self._log(conn, job_id, message, level)

    def logs(self, job_id: str, after: int = 0) -> list[LogEntry]:
        """The job's log in order; ``after`` is the ``seq`` of the last entry already read."""
        query = (
            select(job_logs.c.seq, job_logs.c.level, job_logs.c.message, job_logs.c.created_at)
            .where(job_logs.c.job_id == job_id, job_logs.c.seq > after)
            .order_by(job_logs.c.seq)
        )
        with self._read() as conn:
            return [
                LogEntry(message=r.message, level=r.level, timestamp=r.created_at, seq=r.seq)
                for r in conn.execute(query)
            ]

    # -- the state machine ----------------------------------------------------------------------------------

    def _transition(
        self,
        conn: Connection,
        job_id: str,
        attempt: int,
        expected: JobStatus,
        target: JobStatus,
        /,
        **values: Any,
    ) -> bool:
        if target not in TRANSITIONS[expected]:
            raise IllegalTransition(f"a job cannot go from {expected.value} to {target.value}")
        result = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == expected.value, jobs.c.attempt == attempt)
            .values(status=target.value, **values)
        )
        return result.rowcount == 1

    def _finish(
        self,
        conn: Connection,
        job_id: str,
        attempt: int,
        expected: JobStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        error_type: str | None = None,
        error_status: int | None = None,
        **values: Any,
    ) -> bool:
        """Complete the job and, in the same transaction, queue its webhook."""
        now = utcnow()
        finished = self._transition(
            conn,
            job_id,
            attempt,
            expected,
            DONE,
            output=output,
            error=error,
            error_type=error_type,
            error_status=error_status,
            finished_at=now,
            lease_expires_at=None,
            **values,
        )
        if not finished:
            return False
        webhook_url = conn.execute(select(jobs.c.webhook_url).where(jobs.c.id == job_id)).scalar()
        if webhook_url:
            self._queue_webhook(conn, job_id, webhook_url, output, now)
        return True

    def _finish_cancelled(self, conn: Connection, job_id: str, attempt: int, expected: JobStatus) -> bool:
        done = self._finish(
            conn,
            job_id,
            attempt,
            expected,
            error=CANCELLED_MESSAGE,
            error_type=CANCELLED_TYPE,
            error_status=CANCELLED_STATUS,
        )
        if done:
            self._log(conn, job_id, "Cancelled by the user.", "WARN")
        return done

    def _expire_unstarted(self, conn: Connection, now: datetime) -> int:
        rows = conn.execute(
            select(jobs.c.id, jobs.c.attempt).where(
                jobs.c.status == QUEUED.value,
                jobs.c.started_at.is_(None),
                jobs.c.start_deadline < now,
            )
        ).all()
        expired = 0
        for row in rows:
            if self._finish(
                conn,
                row.id,
                row.attempt,
                QUEUED,
                error=TIMEOUT_MESSAGE,
                error_type=TIMEOUT_TYPE,
                error_status=TIMEOUT_STATUS,
            ):
                self._log(conn, row.id, "No worker started this request before its timeout.", "ERROR")
                expired += 1
        return expired

    def _recover(self, conn: Connection, row: Row) -> int:
        """A running job whose lease expired: its worker died (a crash, unlike a graceful ``release``)."""
        if row.cancel_requested:
            return int(self._finish_cancelled(conn, row.id, row.attempt, RUNNING))
        crashes = row.crashes + 1
        if row.no_retry:
            failed = self._finish(
                conn,
                row.id,
                row.attempt,
                RUNNING,
                error=NO_RETRY_MESSAGE,
                error_type=WORKER_LOST_TYPE,
                error_status=WORKER_LOST_STATUS,
                crashes=crashes,
            )
            if failed:
                self._log(conn, row.id, f"{NO_RETRY_MESSAGE}.", "ERROR")
            return int(failed)
        if crashes < self.max_attempts:
            requeued = self._transition(
                conn,
                row.id,
                row.attempt,
                RUNNING,
                QUEUED,
                worker_id=None,
                lease_expires_at=None,
                crashes=crashes,
            )
            if requeued:
                self._log(
                    conn,
                    row.id,
                    f"The worker stopped responding (crash {crashes} of {self.max_attempts} allowed); "
                    "the request is back in the queue.",
                    "WARN",
                )
            return int(requeued)
        message = f"the worker died {crashes} times while rendering this request"
        failed = self._finish(
            conn,
            row.id,
            row.attempt,
            RUNNING,
            error=message,
            error_type=WORKER_LOST_TYPE,
            error_status=WORKER_LOST_STATUS,
            crashes=crashes,
        )
        if failed:
            self._log(conn, row.id, f"Giving up: {message}.", "ERROR")
        return int(failed)

    def _log(self, conn: Connection, job_id: str, message: str, level: str = "INFO") -> None:
        conn.execute(
            insert(job_logs).values(job_id=job_id, level=level, message=message, created_at=utcnow())
        )


def _count_upto(conn: Connection, limit: int, *where: Any) -> int:
    """How many rows match, counting no further than ``limit``."""
    matching = select(jobs.c.seq).where(*where).limit(limit).subquery()
    return int(conn.execute(select(func.count()).select_from(matching)).scalar() or 0)
