"""Output-file records and retention: which files a job stored (``files``), when they expire, which were left by
attempts that never completed, and deleting finished jobs past retention (driven by ``housekeeping.py``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete as sql_delete
from sqlalchemy import insert, or_, select, true

from framecast.jobs.database import utcnow
from framecast.jobs.models import JobStatus
from framecast.jobs.stats import StoreStats
from framecast.jobs.tables import files, job_logs, jobs, webhooks

RUNNING, DONE = JobStatus.IN_PROGRESS, JobStatus.COMPLETED


class StoreFiles(StoreStats):
    # -- output files (X-Fal-Object-Lifecycle-Preference) ---------------------------------------------------

    def record_file(self, job_id: str, attempt: int, key: str, expires_at: datetime | None) -> None:
        """Record a file *before* storing it, pending until its attempt completes: a worker that dies between
        storing and completing leaves a record that ``orphan_files`` finds, not an untracked file."""
        with self._write() as conn:
            conn.execute(
                insert(files).values(
                    key=key, job_id=job_id, expires_at=expires_at, attempt=attempt, pending=True
                )
            )

    def orphan_files(self) -> list[str]:
        """Keys of pending files whose attempt is no longer running: it ended without completing."""
        query = (
            select(files.c.key)
            .select_from(files.outerjoin(jobs, jobs.c.id == files.c.job_id))
            .where(
                files.c.pending == true(),
                or_(jobs.c.id.is_(None), jobs.c.status != RUNNING.value, jobs.c.attempt != files.c.attempt),
            )
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def expired_files(self, now: datetime | None = None) -> list[str]:
        now = now or utcnow()
        with self._read() as conn:
            query = select(files.c.key).where(files.c.expires_at <= now).order_by(files.c.expires_at)
            return list(conn.execute(query).scalars())

    def forget_file(self, key: str) -> None:
        with self._write() as conn:
            conn.execute(sql_delete(files).where(files.c.key == key))

    # -- retention ------------------------------------------------------------------------------------------

    def finished_before(self, before: datetime, limit: int = 500) -> list[str]:
        """Ids of finished jobs that finished before ``before``, oldest first, at most ``limit``."""
        query = (
            select(jobs.c.id)
            .where(jobs.c.status == DONE.value, jobs.c.finished_at < before)
            .order_by(jobs.c.finished_at)
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def file_keys(self, job_ids: list[str]) -> list[str]:
        with self._read() as conn:
            return list(conn.execute(select(files.c.key).where(files.c.job_id.in_(job_ids))).scalars())

    def delete_jobs(self, job_ids: list[str]) -> int:
        """Delete finished jobs with their logs, webhook deliveries and file records; returns how many jobs."""
        if not job_ids:
            return 0
        with self._write() as conn:
            finished = select(jobs.c.id).where(jobs.c.id.in_(job_ids), jobs.c.status == DONE.value)
            done = list(conn.execute(finished).scalars())  # a job still queued or running keeps everything
            for table in (files, job_logs, webhooks):
                conn.execute(sql_delete(table).where(table.c.job_id.in_(done)))
            return conn.execute(sql_delete(jobs).where(jobs.c.id.in_(done))).rowcount
