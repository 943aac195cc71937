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


MIGRATIONS: list[Step] = [_v1_jobs_and_logs, _v2_webhook_outbox_and_file_expiry, _v3_retention_indexes]
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
