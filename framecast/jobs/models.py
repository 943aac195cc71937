"""Plain records the job store hands out: no SQL, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class JobStatus(str, Enum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class Priority(int, Enum):
    """Lower runs first (X-Fal-Queue-Priority)."""

    normal = 0
    low = 1


class CancelOutcome(str, Enum):
    """The three answers of fal's cancel route."""

    CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
    ALREADY_COMPLETED = "ALREADY_COMPLETED"
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True)
class NewJob:
    """What the API knows about a request when it enqueues it."""

    endpoint: str
    input: dict[str, Any]
    owner: str = ""  # the API key id; "" when auth is off
    priority: Priority = Priority.normal
    webhook_url: str | None = None
    start_timeout_seconds: float | None = None  # X-Fal-Request-Timeout
    store_io: bool = True  # X-Fal-Store-IO: 0 -> False
    file_ttl_seconds: int | None = None  # X-Fal-Object-Lifecycle-Preference
    base_url: str = ""  # absolute base for output URLs (public URL, else the request's host)
    no_retry: bool = False  # X-Fal-No-Retry: 1 — a job whose worker died fails instead of running again


@dataclass(frozen=True)
class QueueLimits:
    """Quotas the store enforces; 0 means no limit. Queued limits refuse a submit (``QueueFull``); the running
    limit holds a key's further jobs in the queue while it has that many rendering."""

    max_queued_per_key: int = 0
    max_queued: int = 0
    max_running_per_key: int = 0


@dataclass(frozen=True)
class LogEntry:
    message: str
    level: str
    timestamp: datetime
    seq: int = 0  # position in the job's log; read logs(after=seq) for the entries that follow

    def to_fal(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "level": self.level,
            "source": "USER",
            "timestamp": self.timestamp.isoformat(),
        }


@dataclass(frozen=True)
class Job:
    id: str
    endpoint: str
    owner: str
    status: JobStatus
    priority: Priority
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    error: str | None
    error_type: str | None
    error_status: int | None  # the HTTP status the result route answers for a failed job
    attempt: int
    cancel_requested: bool
    webhook_url: str | None
    store_io: bool
    file_ttl_seconds: int | None
    base_url: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    start_deadline: datetime | None
    lease_expires_at: datetime | None
    worker_id: str | None
    crashes: int = 0  # attempts that ended with the worker gone (a graceful hand-back is not one)
    no_retry: bool = False
    turn: int = 0  # fair-queue turn within its priority (store.py, "Fair claiming")
    seq: int = 0  # order of arrival

    @property
    def queue_key(self) -> int:
        """The job's place in the claim order (priority, turn, seq) as one sortable integer."""
        return queue_key(int(self.priority), self.turn, self.seq)

    @property
    def failed(self) -> bool:
        return self.status is JobStatus.COMPLETED and self.error is not None

    @property
    def inference_time(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def queue_key(priority: int, turn: int, seq: int) -> int:
    # Turns and sequence numbers stay below 2**31 for billions of jobs; the key fits a signed 64-bit integer.
    return (priority << 62) | (turn << 31) | seq


@dataclass(frozen=True)
class WebhookDelivery:
    """One claimed row of the webhook outbox, with the finished job it reports."""

    id: int
    job: Job
    url: str
    payload: dict[str, Any] | None  # the output as it was when the job finished (survives X-Fal-Store-IO: 0)
    attempt: int  # 1 for the first try
