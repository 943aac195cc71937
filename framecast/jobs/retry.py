"""Transient database faults: which errors are worth retrying, and a retrier that rides out an outage.

A PostgreSQL restart or a network blip surfaces as SQLAlchemy's ``OperationalError`` (or ``InterfaceError``, or
any ``DBAPIError`` that invalidated its connection); SQLite's "database is locked" and "disk is full" are
``OperationalError`` too. A bug in a query is none of these, and is never retried.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["StoreRetry", "is_disk_full", "is_transient"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_transient(exc: BaseException) -> bool:
    """The database could not be reached or was busy: the same call may succeed later."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout)):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def is_disk_full(exc: BaseException) -> bool:
    """A full disk (or quota) anywhere in the exception's chain, or SQLite/PostgreSQL saying so."""
    seen: BaseException | None = exc
    for _ in range(10):  # a chain is short; bounded all the same
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        text = str(seen).lower()
        if isinstance(seen, DBAPIError) and ("disk is full" in text or "no space left" in text):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe(exc: BaseException) -> str:
    """One line naming the fault, without the SQL statement SQLAlchemy appends."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


class StoreRetry:
    """Calls ``fn`` again while it fails with a transient database error, backing off from 0.2 s to 5 s, for at
    most ``budget_seconds`` per call; then the error propagates. One log line when an outage starts and one when it
    ends, shared by every thread of the process (a render's heartbeat, logs and claim), never one per try."""

    def __init__(self, budget_seconds: float, log: logging.Logger = logger) -> None:
        self.budget_seconds = budget_seconds
        self._log = log
        self._lock = threading.Lock()
        self._down_since: float | None = None

    def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        deadline = time.monotonic() + self.budget_seconds
        delay = FIRST_DELAY_SECONDS
        while True:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self._outage(exc)
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_SECONDS)
                continue
            self._recovered()
            return result

    @property
    def outage(self) -> bool:
        return self._down_since is not None

    def _outage(self, exc: Exception) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = time.monotonic()
        self._log.warning(
            "the job database is unreachable (%s); retrying for up to %g s",
            describe(exc),
            self.budget_seconds,
        )

    def _recovered(self) -> None:
        if self._down_since is None:  # the common case, read without the lock
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            self._log.warning("the job database is reachable again after %.1f s", time.monotonic() - since)
