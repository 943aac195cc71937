"""The status stream: Server-Sent Events, one ``data:`` status per change, closed after COMPLETED.

Streams are capped (``StreamSlots``, ``FRAMECAST_MAX_STREAMS``) and a quiet one is cheap: it reads the job on the
event loop (no thread hop on a local database), and polls less often the longer nothing changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from framecast.api.errors import TooManyStreams
from framecast.api.protocol import status_body
from framecast.api.service import RequestService
from framecast.jobs.models import JobStatus
from framecast.jobs.retry import is_transient

POLL_SECONDS = 0.25  # right after a change
IDLE_POLL_FACTOR = 4  # an unchanged stream slows down to this many times POLL_SECONDS (one read a second)
KEEPALIVE_SECONDS = 15.0
RETRY_AFTER_SECONDS = 5


async def status_events(
    service: RequestService,
    job_id: str,
    with_logs: bool,
    base_url: str,
    poll_seconds: float = POLL_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
) -> AsyncGenerator[str, None]:
    """Yield SSE frames; each event carries only the log entries not sent before (the JS client appends)."""
    last_sent: tuple[JobStatus, int | None] | None = None
    after = 0
    quiet_since = time.monotonic()
    delay = poll_seconds
    while True:
        try:
            job, position = await service.reading(service.snapshot, job_id)
            new_logs = await service.reading(service.store.logs, job_id, after) if with_logs else None
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
            delay = poll_seconds
            yield f"data: {json.dumps(status_body(job, position, new_logs, base_url))}\n\n"
        else:
            delay = min(delay * 1.5, poll_seconds * IDLE_POLL_FACTOR)
        if job.status is JobStatus.COMPLETED:
            return
        if time.monotonic() - quiet_since >= keepalive_seconds:
            quiet_since = time.monotonic()
            yield ": keepalive\n\n"
        await asyncio.sleep(delay)


class StreamSlots:
    """Open status streams against their cap. Used on the event loop only, so a plain counter suffices."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def take(self) -> None:
        if self.active >= self.limit:
            raise TooManyStreams(
                f"Too many open status streams ({self.limit}); retry later or poll the status URL",
                retry_after=RETRY_AFTER_SECONDS,
            )
        self.active += 1

    def give_back(self) -> None:
        self.active -= 1


class SlotStreamingResponse(StreamingResponse):
    """A stream that holds one of ``slots`` until it ends, however it ends (completed, hung up, cancelled)."""

    def __init__(self, slots: StreamSlots, content: AsyncGenerator[str, None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._slots = slots
        self._events = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slots.give_back()
            await self._events.aclose()
