"""The one place SQLite and PostgreSQL differ: engine set-up, transactions, and how claims lock rows.

SQLite runs in WAL mode so readers never wait; writes take the lock up front (``BEGIN IMMEDIATE``) so two
processes never deadlock upgrading a read lock, and wait up to the busy timeout instead of failing.
PostgreSQL claims rows with ``FOR UPDATE SKIP LOCKED`` (``Database.lock_rows``) and wakes idle workers with
``LISTEN``/``NOTIFY`` (``wake_workers``, ``wait_for_work``).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Select, create_engine, event, make_url, text

from framecast.errors import ConfigError

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_POOL_SIZE = 48
JOBS_CHANNEL = "framecast_jobs"  # PostgreSQL: NOTIFY on it when a job becomes claimable
CLAIM_LOCK_KEY = 0x46524D44  # PostgreSQL advisory lock serialising claims under a running-per-key limit


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Database:
    """One engine for the process; every call takes its own connection, so methods are thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._skip_locked = engine.dialect.name == "postgresql"
        self._notify = engine.dialect.name == "postgresql"
        self._listener: Any = None  # wait_for_work's LISTEN connection, opened on first use
        self._listen_failed = False
        # SQLite has one writer at a time. Threads of one process queue here, in order, instead of in SQLite's
        # busy handler, which sleeps 1, 2, 5 ... 100 ms between tries and made writes under load wait 100+ ms.
        self._write_lock: threading.Lock | nullcontext = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )
        # SQLite: each thread keeps one autocommit connection for single-statement reads (``_raw_cursor``).
        self._local = threading.local()

    @property
    def reads_are_local(self) -> bool:
        """True when a read is a local file lookup (SQLite in WAL mode, never blocked by a writer): cheap enough
        to run on an event loop. A networked database's reads belong on a thread."""
        return self._engine.dialect.name == "sqlite"

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        fairy = getattr(
            self._local, "fairy", None
        )  # the closing thread's read connection (others end with it)
        if fairy is not None:
            fairy.close()
        self._engine.dispose()

    def wake_workers(self, conn: Connection) -> None:
        """Tell waiting workers a job became claimable (PostgreSQL ``NOTIFY``, delivered when ``conn``'s
        transaction commits); SQLite workers poll, which costs a file read."""
        if self._notify:
            conn.exec_driver_sql(f"NOTIFY {JOBS_CHANNEL}")

    def wait_for_work(self, timeout: float, stop: threading.Event) -> None:
        """Return when a job may be claimable, after ``timeout`` at most, or at once if ``stop`` is set.

        On PostgreSQL a worker sleeps on ``LISTEN`` and wakes at the enqueue's commit, so a job starts within
        milliseconds however long the poll interval; elsewhere it is a plain wait of ``timeout``.
        """
        if not self._notify or stop.is_set():
            stop.wait(timeout)
            return
        try:
            listener = self._listen()
            if self._listen_failed:
                logger.warning("LISTEN %s works again", JOBS_CHANNEL)
                self._listen_failed = False
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                pass
        except Exception as exc:  # noqa: BLE001 - a lost listener must not stop the worker: poll, reconnect later
            if not self._listen_failed:  # once per outage: an idle worker comes here every poll
                logger.warning("LISTEN %s failed (%s); polling until it works again", JOBS_CHANNEL, exc)
                self._listen_failed = True
            if self._listener is not None:
                self._listener.close()
            self._listener = None
            stop.wait(timeout)

    def _listen(self) -> Any:
        """A dedicated autocommit connection LISTENing on the jobs channel (outside the pool: it stays idle)."""
        if self._listener is None or self._listener.closed:
            import psycopg

            url = self._engine.url.set(drivername="postgresql")
            self._listener = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            self._listener.execute(f"LISTEN {JOBS_CHANNEL}")
        return self._listener

    def lock_rows(self, query: Select) -> Select:
        """A claim's SELECT: on PostgreSQL, lock the row and skip rows other claimers hold."""
        return query.with_for_update(skip_locked=True) if self._skip_locked else query

    def serialize_claims(self, conn: Connection) -> None:
        """Make this claim transaction the only one at a time: SQLite's writes already are; PostgreSQL takes a
        transaction-scoped advisory lock (needed when a claim's choice depends on other running jobs)."""
        if self._skip_locked:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})

    def ping(self) -> None:
        """One round trip to the database; raises what the driver raises when it cannot be reached."""
        with self._read() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._write_lock, self._engine.connect() as conn:
            conn.execution_options(framecast_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            yield conn

    def _raw_cursor(self) -> Any:
        """This thread's own DBAPI cursor for single-statement reads (SQLite only: a local file, autocommit, WAL
        snapshots). Held for the thread's life, outside the pool's checkout and events."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            self._local.fairy = self._engine.raw_connection()  # keeps the pooled connection checked out
            cursor = self._local.cursor = self._local.fairy.driver_connection.cursor()
        return cursor

    def _exists(self, query: Select) -> bool:
        with self._read() as conn:
            return conn.execute(query.limit(1)).first() is not None


def _strict_json(value: Any) -> str:
    # PostgreSQL refuses NaN and Infinity in JSON; refuse them on SQLite too, so both behave the same.
    return json.dumps(value, allow_nan=False)


def connect(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigError(
                "the job store needs a database file that the API and workers share, not :memory:"
            )
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # SQLite connections are cheap, and a status poll waiting for a pooled connection is what makes the
        # tail slow when the API's thread pool (40 threads) polls at once: size the pool above that.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_strict_json,
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=SQLITE_POOL_SIZE,
        )
        _setup_sqlite(engine)
        return engine
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # the `postgres` extra installs psycopg 3
    return create_engine(url, pool_pre_ping=True, json_serializer=_strict_json)


def _switch_to_wal(cursor: Any) -> None:
    # Switching a new database to WAL needs it alone for a moment, and SQLite answers "locked" at once, without
    # its busy handler, when another connection is opening it too (several processes starting together).
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _setup_sqlite(engine: Engine) -> None:
    """WAL so readers never wait; writers take the lock up front (BEGIN IMMEDIATE) so two processes never
    deadlock upgrading a read lock, and wait up to the busy timeout instead of failing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver must not BEGIN on its own; _on_begin does
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: switching to WAL may wait
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Reads are single statements (each ``_read`` runs one), and one statement sees one snapshot in WAL mode:
        # no BEGIN for them, which took a third of a status poll's time.
        if conn.get_execution_options().get("framecast_write", False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
