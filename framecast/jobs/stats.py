"""What the job store tells about itself: the queue's shape, outcomes, the webhook outbox, and the workers'
own reports (one row per worker process, rewritten every few seconds). Read by ``/metrics``, ``/health/ready``
and the queue-position snapshot (``positions.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from framecast.jobs.database import utcnow
from framecast.jobs.models import JobStatus, queue_key
from framecast.jobs.outbox import WebhookOutbox
from framecast.jobs.tables import jobs, webhooks, workers

QUEUED, RUNNING, DONE = JobStatus.IN_QUEUE.value, JobStatus.IN_PROGRESS.value, JobStatus.COMPLETED.value

# Built once: the position snapshot reads every queued job's place, in claim order, through the index.
_QUEUED_ORDER = (
    select(jobs.c.priority, jobs.c.turn, jobs.c.seq)
    .where(jobs.c.status == QUEUED)
    .order_by(jobs.c.priority, jobs.c.turn, jobs.c.seq)
)

# The same keys as models.queue_key, computed by SQLite (64-bit integers), in the index's order.
_QUEUED_KEYS_SQL = (
    "SELECT (priority << 62) | (turn << 31) | seq FROM jobs WHERE status = ? ORDER BY priority, turn, seq"
)


class StoreStats(WebhookOutbox):
    def queued_order(self) -> list[int]:
        """Every queued job's ``queue_key``, ascending (the order claims take them)."""
        if self.reads_are_local:  # SQLite computes the keys itself: 100k rows in tens of ms, not hundreds
            cursor = self._raw_cursor()
            cursor.execute(_QUEUED_KEYS_SQL, (QUEUED,))
            return [key for (key,) in cursor.fetchall()]
        with self._read() as conn:
            return [queue_key(p, t, s) for p, t, s in conn.execute(_QUEUED_ORDER)]

    def queue_depth(self) -> dict[int, int]:
        """Queued jobs per priority."""
        query = select(jobs.c.priority, func.count()).where(jobs.c.status == QUEUED).group_by(jobs.c.priority)
        with self._read() as conn:
            return {int(p): int(n) for p, n in conn.execute(query)}

    def queued_keys(self) -> int:
        """How many API keys have a job waiting."""
        owners = select(jobs.c.owner).where(jobs.c.status == QUEUED).distinct().subquery()
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(owners)).scalar() or 0)

    def running(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).where(jobs.c.status == RUNNING)).scalar() or 0)

    def finished_by_error_type(self) -> dict[str, int]:
        """Finished jobs per ``error_type``; ``""`` counts the successful ones."""
        query = (
            select(jobs.c.error_type, func.count()).where(jobs.c.status == DONE).group_by(jobs.c.error_type)
        )
        with self._read() as conn:
            return {error_type or "": int(n) for error_type, n in conn.execute(query)}

    def webhooks_by_state(self) -> dict[str, tuple[int, int]]:
        """Outbox rows per state (PENDING, DELIVERED, FAILED): (rows, delivery tries made)."""
        query = select(webhooks.c.state, func.count(), func.coalesce(func.sum(webhooks.c.attempts), 0))
        with self._read() as conn:
            rows = conn.execute(query.group_by(webhooks.c.state))
            return {state: (int(n), int(tries)) for state, n, tries in rows}

    # -- workers' reports -----------------------------------------------------------------------------------

    def report_worker(self, worker_id: str, stats: dict[str, Any]) -> None:
        """Write a worker's latest report (upsert by id, portable to both databases)."""
        now = utcnow()
        with self._write() as conn:
            updated = conn.execute(
                update(workers).where(workers.c.worker_id == worker_id).values(seen_at=now, stats=stats)
            )
            if updated.rowcount == 0:
                conn.execute(insert(workers).values(worker_id=worker_id, seen_at=now, stats=stats))

    def worker_reports(self, since: datetime) -> list[tuple[str, datetime, dict[str, Any]]]:
        query = select(workers.c.worker_id, workers.c.seen_at, workers.c.stats).where(
            workers.c.seen_at >= since
        )
        with self._read() as conn:
            return [
                (w, seen, stats or {}) for w, seen, stats in conn.execute(query.order_by(workers.c.worker_id))
            ]

    def forget_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

    def forget_workers_before(self, before: datetime) -> int:
        with self._write() as conn:
            return conn.execute(delete(workers).where(workers.c.seen_at < before)).rowcount
