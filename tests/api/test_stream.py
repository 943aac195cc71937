"""The SSE status stream: a `data:` status per change, only new log lines each, closed after COMPLETED."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

from fastapi.testclient import TestClient

from framecast.api.service import RequestService
from framecast.api.stream import status_events
from framecast.jobs.store import JobStore
from tests.api.conftest import SMALL, SUBMIT, Live, requests_path, submit


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
