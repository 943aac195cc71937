"""The SSE status stream: a `data:` status per change, only new log lines each, closed after COMPLETED."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from framecast.api.service import RequestService
from framecast.api.stream import status_events
from framecast.jobs.models import NewJob
from framecast.jobs.store import JobStore
from tests.api.conftest import SMALL, SUBMIT, Live, _serve, make_settings, requests_path, submit
from tests.live_server import free_port


def events(text: str) -> list[dict]:
    return [json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")]


def test_stream_sends_each_change_with_new_logs_only_and_closes_after_completed(
    live_without_worker: Live,
) -> None:
    live, store = live_without_worker, live_without_worker.store
    request_id = live.client.post(SUBMIT, json=SMALL).json()["request_id"]
    sent: list[dict] = []

    with live.client.stream(
        "GET", requests_path(request_id, "/status/stream"), params={"logs": "1"}
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["x-fal-request-id"] == request_id
        lines = stream.iter_lines()
        sent.append(next_event(lines))  # the first event, before anything happens to the job
        job = store.claim("w", 30)
        assert job is not None
        store.append_log(job.id, "step 1/2")
        sent.append(next_event(lines))
        store.append_log(job.id, "step 2/2")
        store.complete(job.id, job.attempt, {"video": {"url": "u"}, "seed": 1})
        sent.extend(events("\n".join(lines)))  # the rest, until the server closes the stream

    assert sent[0]["status"] == "IN_QUEUE" and sent[0]["queue_position"] == 0
    assert sent[1]["status"] == "IN_PROGRESS"
    assert sent[-1]["status"] == "COMPLETED"
    assert sent[-1]["metrics"]["inference_time"] >= 0
    assert [s["status"] for s in sent].count("COMPLETED") == 1
    messages = [log["message"] for s in sent for log in (s.get("logs") or [])]
    assert messages == ["step 1/2", "step 2/2"]  # each line once: the JS client appends them


def next_event(lines: Iterator[str]) -> dict:
    for line in lines:
        if line.startswith("data: "):
            return json.loads(line[len("data: ") :])
    raise AssertionError("stream ended")


def test_stream_without_logs_sends_null_logs(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    job = store.claim("w", 30)
    assert job is not None
    store.append_log(job.id, "hidden")
    store.complete(job.id, job.attempt, {"video": {"url": "u"}, "seed": 1})

    sent = events(client.get(requests_path(request_id, "/status/stream")).text)

    assert len(sent) == 1
    assert sent[0]["status"] == "COMPLETED" and sent[0]["logs"] is None


def test_a_quiet_stream_sends_keepalive_comments(store: JobStore) -> None:
    from framecast.jobs.models import NewJob

    job = store.enqueue(NewJob(endpoint="e", input={"prompt": "x"}))
    service = RequestService(store, sync_timeout_seconds=60)

    async def first_frames() -> list[str]:
        frames: list[str] = []
        stream = status_events(service, job.id, False, "http://h", poll_seconds=0.01, keepalive_seconds=0.05)
        async for frame in stream:
            frames.append(frame)
            if len(frames) == 3:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return frames

    frames = asyncio.run(first_frames())

    assert frames[0].startswith("data: ")
    assert frames[1:] == [": keepalive\n\n", ": keepalive\n\n"]


@pytest.fixture
def two_streams(tmp_path: Path) -> Iterator[Live]:
    """A live API (no worker) that allows two status streams at once."""
    settings = make_settings(tmp_path, port=free_port(), api_keys={"alice": "alice-secret"}, max_streams=2)
    yield from _serve(settings, with_worker=False)


def test_past_the_stream_cap_a_stream_is_503_with_retry_after_and_a_closed_one_frees_its_slot(
    two_streams: Live,
) -> None:
    live = two_streams
    path = requests_path(live.client.post(SUBMIT, json=SMALL).json()["request_id"], "/status/stream")
    with live.client.stream("GET", path) as first, live.client.stream("GET", path) as second:
        assert (first.status_code, second.status_code) == (200, 200)
        refused = live.client.get(path)

        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "5"
        assert refused.json() == {
            "detail": "Too many open status streams (2); retry later or poll the status URL",
            "error_type": "too_many_streams",
        }
    deadline = time.monotonic() + 5
    while True:  # the server sees the two hang up within a poll or two
        with live.client.stream("GET", path) as again:
            if again.status_code == 200:
                break
        assert time.monotonic() < deadline, "the closed streams kept their slots"
        time.sleep(0.1)


def test_a_quiet_stream_polls_less_and_less_often(store: JobStore) -> None:
    job = store.enqueue(NewJob(endpoint="e", input={"prompt": "x"}))
    service = RequestService(store, sync_timeout_seconds=60)
    # Each poll reads the job once; on SQLite that read bypasses SQLAlchemy (a cached cursor), so the polls are
    # counted where the stream makes them.
    polls: list[str] = []
    read = service.snapshot
    service.snapshot = lambda job_id: polls.append(job_id) or read(job_id)  # type: ignore[method-assign]

    async def listen_for(seconds: float) -> None:
        stream = status_events(service, job.id, False, "http://h", poll_seconds=0.05, keepalive_seconds=60)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(consume(stream), seconds)

    asyncio.run(listen_for(1.0))

    # A poll is one read. Every 0.05 s that would be 20 in the second; slowing down to 0.2 s, about 8.
    assert 2 <= len(polls) <= 10


async def consume(stream: AsyncIterator[str]) -> None:
    async for _ in stream:
        pass
