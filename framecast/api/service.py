"""The queue as the API sees it: submit, look up, wait, cancel and deliver, each checked against the caller.

Synchronous methods run on the thread pool (the store is blocking SQLAlchemy); ``wait`` is the one coroutine.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.concurrency import run_in_threadpool

from framecast.api.auth import Principal
from framecast.api.errors import RequestNotFinished, RequestTimedOut, ResultGone
from framecast.api.protocol import SubmitOptions, webhook_invalid
from framecast.egress import EgressPolicy
from framecast.errors import EgressRefused, NotFoundError
from framecast.jobs.models import CancelOutcome, Job, JobStatus, LogEntry, NewJob
from framecast.jobs.positions import QueuePositions
from framecast.jobs.retry import is_transient
from framecast.jobs.store import JobStore
from framecast.schema import ENDPOINT_ID, TextToVideoInput

WRITER_THREADS = 8
WAIT_MIN_SECONDS = 0.05
WAIT_MAX_SECONDS = 0.5
# What the sync route may answer for a failed job. The JS client retries 429/502/503/504 on the sync call,
# which would submit the same generation again; a job that already ran and failed is reported as 500 instead.
_SYNC_RETRIED = frozenset({429, 502, 503, 504})
T = TypeVar("T")


def _valid_id(request_id: str) -> bool:
    try:
        return str(uuid.UUID(request_id)) == request_id.lower()
    except ValueError:
        return False


class RequestService:
    """Every read and write of a request made through the API."""

    def __init__(
        self,
        store: JobStore,
        sync_timeout_seconds: float,
        egress: EgressPolicy | None = None,
        position_max_age: float = 0.0,
    ) -> None:
        self.store = store
        self.sync_timeout_seconds = sync_timeout_seconds
        self.egress = egress if egress is not None else EgressPolicy()
        self.positions = QueuePositions(store, position_max_age)
        # Writes wait for the database's write lock; on threads of their own they never hold up status reads,
        # which run on the default pool (the Python client polls every 100 ms).
        self._writers = anyio.CapacityLimiter(WRITER_THREADS)

    async def reading(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read ``fn(*args)``: inline on a local database (a thread hop and its GIL hand-offs cost more
        than the read), on the default thread pool otherwise."""
        if self.store.reads_are_local:
            return fn(*args)
        return await anyio.to_thread.run_sync(partial(fn, *args))

    async def writing(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the blocking write ``fn(*args)`` on the writers' threads."""
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=self._writers)

    # 1. Submit.
    async def admit_webhook(self, url: str) -> None:
        """The egress check of a submitted webhook (DNS included, so on a thread); a refusal is a 422."""
        try:
            await anyio.to_thread.run_sync(self.egress.admit, url)
        except EgressRefused as exc:
            raise webhook_invalid(url, exc) from None

    def submit(
        self, request: TextToVideoInput, options: SubmitOptions, principal: Principal, base_url: str
    ) -> tuple[Job, int]:
        job = self.store.enqueue(
            NewJob(
                endpoint=ENDPOINT_ID,
                input=request.model_dump(mode="json"),
                owner=principal.owner,
                priority=options.priority,
                webhook_url=options.webhook_url,
                start_timeout_seconds=options.start_timeout_seconds,
                store_io=options.store_io,
                file_ttl_seconds=options.file_ttl_seconds,
                base_url=base_url,
                no_retry=options.no_retry,
            )
        )
        return job, self.positions.position(job)

    # 2. Look up.
    def get(self, request_id: str, principal: Principal) -> Job:
        job = self.store.get(request_id) if _valid_id(request_id) else None
        if job is None:
            raise NotFoundError(f"Request {request_id} not found")
        principal.check_owns(job)
        return job

    def snapshot(self, job_id: str) -> tuple[Job, int | None]:
        """The job and, while it is queued, its position in the queue (positions.py: how fresh it is)."""
        job = self.store.get(job_id)
        assert job is not None
        return job, self._position(job)

    def status(
        self, request_id: str, principal: Principal, with_logs: bool
    ) -> tuple[Job, int | None, list[LogEntry] | None]:
        job = self.get(request_id, principal)
        return job, self._position(job), self.store.logs(job.id) if with_logs else None

    def _position(self, job: Job) -> int | None:
        return self.positions.position(job) if job.status is JobStatus.IN_QUEUE else None

    def finished(self, request_id: str, principal: Principal) -> Job:
        job = self.get(request_id, principal)
        if job.status is not JobStatus.COMPLETED:
            raise RequestNotFinished("Request is still in progress")
        return job

    # 3. Deliver.
    def output(self, job: Job) -> dict[str, Any]:
        """The finished job's output; then drops the payloads if the caller asked not to store them."""
        if job.output is None:
            raise ResultGone("The result was delivered once and not stored (X-Fal-Store-IO: 0)")
        if not job.store_io:
            self.store.forget_payloads(job.id)
        return job.output

    @staticmethod
    def error_status(job: Job, sync: bool) -> int:
        status = job.error_status or 500
        if sync and status in _SYNC_RETRIED and job.error_type != RequestTimedOut.error_type:
            return 500
        return status

    # 4. Cancel.
    def cancel(self, request_id: str, principal: Principal) -> CancelOutcome:
        try:
            self.get(request_id, principal)
        except NotFoundError:
            return CancelOutcome.NOT_FOUND
        return self.store.cancel(request_id)

    # 5. Wait (the sync route).
    async def wait(self, job_id: str, disconnected: Callable[[], Awaitable[bool]]) -> Job | None:
        """Poll until the job completes; ``None`` if the caller hung up. Hanging up or waiting past the sync
        limit cancels the job, so an abandoned sync call does not keep a GPU busy."""
        deadline = time.monotonic() + self.sync_timeout_seconds
        delay = WAIT_MIN_SECONDS
        while True:
            try:
                job = await run_in_threadpool(self.store.get, job_id)
            except Exception as exc:
                # The job is queued: answering 503 now would make the JS client submit it again. The database
                # is waited for instead, up to the sync limit.
                if not is_transient(exc) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(WAIT_MAX_SECONDS)
                continue
            assert job is not None
            if job.status is JobStatus.COMPLETED:
                return job
            if await disconnected():
                await self.writing(self.store.cancel, job_id)
                return None
            if time.monotonic() > deadline:
                await self.writing(self.store.cancel, job_id)
                limit = f"{self.sync_timeout_seconds:g}"
                raise RequestTimedOut(
                    f"The request did not finish within {limit} s; use the queue for long jobs"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, WAIT_MAX_SECONDS)
