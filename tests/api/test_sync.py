"""The sync route and the whole loop on a live server: uvicorn on a free port, a real worker (instant)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from framecast.jobs.models import JobStatus
from framecast.jobs.store import JobStore
from tests.api.conftest import KEY_A, SMALL, SUBMIT, SYNC, Live, auth, requests_path


def test_sync_run_answers_the_output_with_a_working_file_url(live: Live) -> None:
    response = live.client.post(SYNC, json={**SMALL, "seed": 42})

    assert response.status_code == 200, response.text
    output = response.json()
    assert output["seed"] == 42
    video = output["video"]
    assert video["content_type"] == "video/mp4"
    assert video["url"].startswith(f"{live.url}/files/")
    request_id = response.headers["x-fal-request-id"]
    job = live.store.get(request_id)
    assert job is not None and job.status is JobStatus.COMPLETED and job.owner == "alice"
    file = httpx.get(video["url"])
    assert file.status_code == 200 and len(file.content) == video["file_size"]
    part = httpx.get(video["url"], headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.content == file.content[:8]


def test_submit_then_stream_then_result_on_a_live_server(live: Live) -> None:
    submitted = live.client.post(SUBMIT, json=SMALL).json()

    with live.client.stream("GET", f"{submitted['status_url']}/stream", params={"logs": 1}) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    result = live.client.get(submitted["response_url"])

    final = json.loads(lines[-1][len("data: ") :])
    assert final["status"] == "COMPLETED"
    assert any("step" in log["message"] for line in lines for log in json.loads(line[6:]).get("logs") or [])
    assert result.status_code == 200 and result.json()["video"]["file_size"] > 0


def test_sync_run_with_store_io_0_leaves_no_payload_behind(live: Live) -> None:
    response = live.client.post(SYNC, json=SMALL, headers={"X-Fal-Store-IO": "0"})

    job = live.store.get(response.headers["x-fal-request-id"])
    assert response.status_code == 200
    assert job is not None and job.input is None and job.output is None


def test_sync_run_of_a_request_that_times_out_in_the_queue_is_504_user(client: TestClient) -> None:
    # No worker here: the request is never started, and the API's housekeeping ends it.
    response = client.post(SYNC, json=SMALL, headers={"X-Fal-Request-Timeout": "0.1"})

    assert response.status_code == 504
    assert response.headers["x-fal-request-timeout-type"] == "user"  # neither client retries this
    assert response.json()["error_type"] == "request_timeout"


def test_sync_run_that_fails_with_a_retryable_status_answers_500(client: TestClient, store: JobStore) -> None:
    def fail_next() -> None:
        while (job := store.claim("w", 30)) is None:
            time.sleep(0.01)
        store.fail(job.id, job.attempt, "worker lost", "worker_lost", 503)

    thread = threading.Thread(target=fail_next)
    thread.start()
    response = client.post(SYNC, json=SMALL)
    thread.join()

    assert response.status_code == 500  # 503 would make the JS client submit the same render again
    assert response.json() == {"detail": "worker lost", "error_type": "worker_lost"}
    request_id = response.headers["x-fal-request-id"]
    assert client.get(requests_path(request_id)).status_code == 503  # the queue result keeps the true status


def test_sync_run_past_the_sync_limit_is_cancelled_and_504(tmp_path, store: JobStore) -> None:
    from framecast.api import create_app
    from tests.api.conftest import make_settings

    app = create_app(make_settings(tmp_path, sync_timeout_seconds=0.2), store=store)
    with TestClient(app) as client:
        response = client.post(SYNC, json=SMALL)

    assert response.status_code == 504
    assert response.headers["x-fal-request-timeout-type"] == "user"
    job = store.get(response.headers["x-fal-request-id"])
    assert job is not None and job.status is JobStatus.COMPLETED and job.error_type == "request_cancelled"


def test_live_server_rejects_a_wrong_key_and_another_keys_request(live: Live) -> None:
    submitted = live.client.post(SUBMIT, json=SMALL).json()

    wrong = httpx.get(submitted["status_url"], headers=auth("alice:nope"))
    anonymous = httpx.post(f"{live.url}{SUBMIT}", json=SMALL)

    assert wrong.status_code == 401 and anonymous.status_code == 401
    assert httpx.get(submitted["status_url"], headers=auth(KEY_A)).status_code in (200, 202)


def test_a_sync_caller_who_hangs_up_cancels_its_request(live_without_worker: Live) -> None:
    live = live_without_worker
    with pytest.raises(httpx.ReadTimeout):
        live.client.post(SYNC, json=SMALL, timeout=0.5)
    (job_id,) = [job.id for job in _all_jobs(live.store)]

    deadline = time.monotonic() + 5
    while (job := live.store.get(job_id)) is not None and job.status is not JobStatus.COMPLETED:
        assert time.monotonic() < deadline, job
        time.sleep(0.05)

    assert job is not None and job.error_type == "request_cancelled"


def _all_jobs(store: JobStore) -> list:
    from sqlalchemy import select

    from framecast.jobs.tables import jobs

    with store._engine.connect() as conn:  # test-only peek: the API offers no "list jobs"
        return [store.get(row.id) for row in conn.execute(select(jobs.c.id))]
