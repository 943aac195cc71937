"""Versioned schema changes: ordered steps and a ``schema_version`` table, so any older database opens.

Each step freezes the DDL of its own version (never import ``tables`` here: those change with later steps).
To change the schema, append a step; never edit a released one. Only portable DDL (CREATE TABLE, CREATE INDEX,
ALTER TABLE ... ADD COLUMN) keeps SQLite and PostgreSQL on the same steps.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    text,
    update,
)

from framecast.errors import ConfigError
from framecast.jobs.tables import UTCDateTime
from framecast.jobs.tables import schema_version as schema_version_table

Step = Callable[[Connection], None]


def _v1_jobs_and_logs(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "jobs",
        meta,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("id", String(36), nullable=False, unique=True),
        Column("endpoint", String(200), nullable=False),
        Column("owner", String(200), nullable=False),
        Column("status", String(20), nullable=False),
        Column("priority", Integer, nullable=False),
        Column("input", JSON(none_as_null=True)),
        Column("output", JSON(none_as_null=True)),
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
        Index("ix_jobs_runnable", "status", "priority", "seq"),
    )
    Table(
        "job_logs",
        meta,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("job_id", String(36), nullable=False),
        Column("level", String(10), nullable=False),
        Column("message", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Index("ix_job_logs_job", "job_id", "seq"),
    )
    meta.create_all(conn)


def _v2_webhook_outbox_and_file_expiry(conn: Connection) -> None:
    meta = MetaData()
    Table(
        "webhooks",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", String(36), nullable=False),
        Column("url", Text, nullable=False),
        Column("payload", JSON(none_as_null=True)),
        Column("state", String(20), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_at", UTCDateTime, nullable=False),
        Column("lease_expires_at", UTCDateTime),
        Column("worker_id", String(200)),
        Column("last_error", Text),
        Column("created_at", UTCDateTime, nullable=False),
        Column("delivered_at", UTCDateTime),
        Index("ix_webhooks_due", "state", "next_at"),
    )
    Table(
        "files",
        meta,
        Column("key", String(400), primary_key=True),
        Column("job_id", String(36), nullable=False),
        Column("expires_at", UTCDateTime),
        Index("ix_files_expiry", "expires_at"),
    )
    meta.create_all(conn)


def _v3_retention_indexes(conn: Connection) -> None:
    # Retention (housekeeping.py) looks up finished jobs by finish time, then their files and webhooks by job:
    # without these, every pass would scan the three tables.
    for statement in (
        "CREATE INDEX ix_jobs_finished ON jobs (status, finished_at)",
        "CREATE INDEX ix_files_job ON files (job_id)",
        "CREATE INDEX ix_webhooks_job ON webhooks (job_id)",
    ):
        conn.execute(text(statement))


def _v4_fairness_crashes_and_workers(conn: Connection) -> None:
    # Fair claiming orders the queue by (priority, turn, seq); crashes counts attempts whose worker died, so a
    # graceful hand-back no longer uses one up; no_retry is X-Fal-No-Retry. A file is recorded, pending, before it
    # is stored, so housekeeping can remove the files of attempts that never completed.
    for statement in (
        "ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN no_retry BOOLEAN NOT NULL DEFAULT false",
        "ALTER TABLE jobs ADD COLUMN turn INTEGER NOT NULL DEFAULT 0",
        # Before v4 every ended attempt counted: keep what unfinished jobs had used.
        "UPDATE jobs SET crashes = CASE WHEN status = 'IN_PROGRESS' THEN attempt - 1 ELSE attempt END "
        "WHERE status <> 'COMPLETED' AND attempt > 0",
        "DROP INDEX ix_jobs_runnable",
        "CREATE INDEX ix_jobs_queue ON jobs (status, priority, turn, seq)",
        "CREATE INDEX ix_jobs_owner_queue ON jobs (owner, status, priority, turn)",
        "CREATE INDEX ix_jobs_deadline ON jobs (status, start_deadline)",
        "CREATE INDEX ix_jobs_outcome ON jobs (status, error_type)",
        "ALTER TABLE files ADD COLUMN attempt INTEGER",
        "ALTER TABLE files ADD COLUMN pending BOOLEAN NOT NULL DEFAULT false",
        "CREATE INDEX ix_files_pending ON files (pending)",
    ):
        conn.execute(text(statement))
    meta = MetaData()
    Table(
        "workers",
        meta,
        Column("worker_id", String(200), primary_key=True),
        Column("seen_at", UTCDateTime, nullable=False),
        Column("stats", JSON(none_as_null=True)),
        Index("ix_workers_seen", "seen_at"),
    )
    meta.create_all(conn)


MIGRATIONS: list[Step] = [
    _v1_jobs_and_logs,
    _v2_webhook_outbox_and_file_expiry,
    _v3_retention_indexes,
    _v4_fairness_crashes_and_workers,
]
LATEST = len(MIGRATIONS)
MIGRATION_LOCK_KEY = 0x46524D43  # "FRMC"


def current_version(conn: Connection) -> int:
    schema_version_table.create(conn, checkfirst=True)
    return conn.execute(select(schema_version_table.c.version)).scalar() or 0


def migrate(engine: Engine, *, target: int = LATEST) -> int:
    """Bring the database to ``target`` in one write transaction, so two processes may open it at once."""
    with engine.connect() as conn:
        conn.execution_options(framecast_write=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                # SQLite serialises this transaction with BEGIN IMMEDIATE; PostgreSQL needs a lock.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            version = current_version(conn)
            if version > LATEST:
                raise ConfigError(
                    f"the database is at schema version {version}, newer than this release knows ({LATEST}); "
                    "upgrade Framecast"
                )
            for step in MIGRATIONS[version:target]:
                step(conn)
            if version == 0:
                conn.execute(insert(schema_version_table).values(version=max(target, version)))
            elif target > version:
                conn.execute(update(schema_version_table).values(version=target))
            return max(version, target)
