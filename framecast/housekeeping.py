"""Deleting what has outlived its time, run by the API's and the workers' housekeeping loops alike.

- An output file past its expiry (``X-Fal-Object-Lifecycle-Preference``) goes from the store and its record.
- A file whose attempt ended without completing (its worker died between storing it and completing the job, or
  the attempt failed after storing it) goes too: workers record a file, pending, before they store it.
- A worker's metrics row (``workers``) a day after its last report: its process died without removing it.
- With ``FRAMECAST_RETENTION_DAYS``, a finished request older than that goes entirely: its files, its logs, its
  webhook deliveries and its row (its status then answers 404, as for an unknown request). Queued and running
  requests are never touched.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from framecast.jobs import JobStore
from framecast.jobs.database import utcnow
from framecast.storage import Storage

logger = logging.getLogger(__name__)

PURGE_BATCH = 500  # jobs per pass, so one pass never holds the write lock long
WORKER_REPORT_DAYS = 1.0  # a worker row unseen this long belongs to a worker that died without removing it


def delete_expired(
    store: JobStore, storage: Storage, retention_days: float = 0.0, now: datetime | None = None
) -> tuple[int, int]:
    """One pass: expired and orphaned files, then requests past retention. Returns (files deleted, requests
    deleted)."""
    now = now or utcnow()
    expired = list(dict.fromkeys(store.expired_files(now) + store.orphan_files()))  # a key may be both
    for key in expired:
        storage.delete(key)  # the file first: a crash between the two leaves a record to retry, not an orphan
        store.forget_file(key)
    store.forget_workers_before(now - timedelta(days=WORKER_REPORT_DAYS))
    purged = 0
    if retention_days > 0:
        job_ids = store.finished_before(now - timedelta(days=retention_days), PURGE_BATCH)
        for key in store.file_keys(job_ids):
            storage.delete(key)
        purged = store.delete_jobs(job_ids)
        if purged:
            logger.info("deleted %d request(s) finished more than %g days ago", purged, retention_days)
    return len(expired), purged
