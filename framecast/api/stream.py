"""The status stream: Server-Sent Events, one ``data:`` status per change, closed after COMPLETED."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from framecast.api.protocol import status_body
from framecast.api.service import RequestService
from framecast.jobs.models import JobStatus
from framecast.jobs.retry import is_transient

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


async def status_events(
    service: RequestService,
    job_id: str,
    with_logs: bool,
    base_url: str,
    poll_seconds: float = POLL_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
) -> AsyncIterator[str]:
    """Yield SSE frames; each event carries only the log entries not sent before (the JS client appends)."""
    last_sent: tuple[JobStatus, int | None] | None = None
    after = 0
    quiet_since = time.monotonic()
    service.streams += 1
    try:
        while True:
            try:
                job, position = await run_in_threadpool(service.snapshot, job_id)
                new_logs = await run_in_threadpool(service.store.logs, job_id, after) if with_logs else None
            except Exception as exc:
                if not is_transient(exc):
                    raise
                # The database is away: the stream stays open and resumes when it is back (keepalives go on).
                job, new_logs = None, None
            if job is None:
                if time.monotonic() - quiet_since >= keepalive_seconds:
                    quiet_since = time.monotonic()
                    yield ": keepalive\n\n"
                await asyncio.sleep(poll_seconds)
                continue
            if new_logs:
                after = new_logs[-1].seq
            if (job.status, position) != last_sent or new_logs:
                last_sent = (job.status, position)
                quiet_since = time.monotonic()
                yield f"data: {json.dumps(status_body(job, position, new_logs, base_url))}\n\n"
            if job.status is JobStatus.COMPLETED:
                return
            if time.monotonic() - quiet_since >= keepalive_seconds:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            await asyncio.sleep(poll_seconds)
    finally:
        service.streams -= 1
