"""The job store's tables as the newest migration leaves them (every query is written against these), and the
record a job row reads back as."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    false,
    select,
)

from framecast.jobs.models import Job, JobStatus, Priority


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the job store only takes timezone-aware datetimes")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def json_column(name: str) -> Column:
    return Column(name, JSON(none_as_null=True), nullable=True)


metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

jobs = Table(
    "jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("endpoint", String(200), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("priority", Integer, nullable=False),
    json_column("input"),
    json_column("output"),
    Column("error", Text),
    Column("error_type", String(100)),
    Column("error_status", Integer),
    Column("attempt", Integer, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("webhook_url", Text),
    Column("store_io", Boolean, nullable=False),
    Column("file_ttl_seconds", Integer),
    Column("base_url", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("start_deadline", UTCDateTime),
    Column("lease_expires_at", UTCDateTime),
    Column("worker_id", String(200)),
    Column("crashes", Integer, nullable=False, server_default="0"),
    Column("no_retry", Boolean, nullable=False, server_default=false()),
    Column("turn", Integer, nullable=False, server_default="0"),
    Index("ix_jobs_queue", "status", "priority", "turn", "seq"),
    Index("ix_jobs_owner_queue", "owner", "status", "priority", "turn"),
    Index("ix_jobs_deadline", "status", "start_deadline"),
    Index("ix_jobs_finished", "status", "finished_at"),
    Index("ix_jobs_outcome", "status", "error_type"),
)

job_logs = Table(
    "job_logs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False),
    Column("level", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_job_logs_job", "job_id", "seq"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False),
    Column("url", Text, nullable=False),
    json_column("payload"),
    Column("state", String(20), nullable=False),  # PENDING | DELIVERED | FAILED
    Column("attempts", Integer, nullable=False),
    Column("next_at", UTCDateTime, nullable=False),
    Column("lease_expires_at", UTCDateTime),
    Column("worker_id", String(200)),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index("ix_webhooks_due", "state", "next_at"),
    Index("ix_webhooks_job", "job_id"),
)

files = Table(
    "files",
    metadata,
    Column("key", String(400), primary_key=True),
    Column("job_id", String(36), nullable=False),
    Column("expires_at", UTCDateTime),
    Column("attempt", Integer),  # the attempt that stored it (NULL: recorded before schema v4)
    Column(
        "pending", Boolean, nullable=False, server_default=false()
    ),  # stored, its attempt not completed yet
    Index("ix_files_expiry", "expires_at"),
    Index("ix_files_job", "job_id"),
    Index("ix_files_pending", "pending"),
)

# One row per worker process, rewritten every few seconds: what /metrics reports about workers.
workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(200), primary_key=True),
    Column("seen_at", UTCDateTime, nullable=False),
    json_column("stats"),
    Index("ix_workers_seen", "seen_at"),
)


# Built once: status polls read a job ten times a second per client, and building the statement cost more than
# running it.
_LOAD_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))


def load_job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(_LOAD_JOB, {"job_id": job_id}).first()
    return None if row is None else job_from_row(row)


class RawJobReader:
    """``load_job`` straight on a DBAPI connection: the statement compiled once, each column's own result
    processor (JSON, UTC datetimes) applied by hand. A status poll on SQLite spent three quarters of its time in
    SQLAlchemy's per-execution plumbing (events, transaction, pool), not in SQLite (10 µs)."""

    def __init__(self, dialect: Dialect) -> None:
        compiled = _LOAD_JOB.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = [column.name for column in jobs.columns]
        types = [column.type.dialect_impl(dialect) for column in jobs.columns]
        self.processors = [kind.result_processor(dialect, None) for kind in types]

    def __call__(self, cursor: Any, job_id: str) -> Job | None:
        cursor.execute(self.sql, (job_id,))
        raw = cursor.fetchone()
        if raw is None:
            return None
        values = [value if fn is None else fn(value) for fn, value in zip(self.processors, raw, strict=True)]
        return job_from_row(SimpleNamespace(**dict(zip(self.names, values, strict=True))))  # type: ignore[arg-type]


def job_from_row(row: Row) -> Job:
    return Job(
        id=row.id,
        endpoint=row.endpoint,
        owner=row.owner,
        status=JobStatus(row.status),
        priority=Priority(row.priority),
        input=row.input,
        output=row.output,
        error=row.error,
        error_type=row.error_type,
        error_status=row.error_status,
        attempt=row.attempt,
        cancel_requested=bool(row.cancel_requested),
        webhook_url=row.webhook_url,
        store_io=bool(row.store_io),
        file_ttl_seconds=row.file_ttl_seconds,
        base_url=row.base_url,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        start_deadline=row.start_deadline,
        lease_expires_at=row.lease_expires_at,
        worker_id=row.worker_id,
        crashes=row.crashes,
        no_retry=bool(row.no_retry),
        turn=row.turn,
        seq=row.seq,
    )
