"""The job store: the durable queue that the API writes and the workers drain."""

from framecast.jobs.models import (
    CancelOutcome,
    Job,
    JobStatus,
    LogEntry,
    NewJob,
    Priority,
    QueueLimits,
    WebhookDelivery,
)
from framecast.jobs.store import JobStore

__all__ = [
    "CancelOutcome",
    "Job",
    "JobStatus",
    "JobStore",
    "LogEntry",
    "NewJob",
    "Priority",
    "QueueLimits",
    "WebhookDelivery",
]
