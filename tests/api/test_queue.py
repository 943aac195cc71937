"""The queue routes against a real store: every status body and code, result, cancel, priority, timeouts."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient

from framecast.jobs.store import JobStore
from tests.api.conftest import ENDPOINT, SUBMIT, requests_path, run_job, submit

URL_KEYS = {"response_url", "status_url", "cancel_url"}


def test_submit_answers_in_queue_with_absolute_urls_and_position(client: TestClient) -> None:
    first = submit(client)
    second = submit(client)

    assert first["status"] == "IN_QUEUE"
    assert uuid.UUID(first["request_id"]).version == 4
    base = f"http://testserver/queue/fal-ai/pixverse/requests/{second['request_id']}"
    assert second["response_url"] == base
    assert second["status_url"] == f"{base}/status"
    assert second["cancel_url"] == f"{base}/cancel"
    assert (first["queue_position"], second["queue_position"]) == (0, 1)


def test_public_url_setting_wins_over_the_request_host(tmp_path, store, storage) -> None:
    from framecast.api import create_app
    from tests.api.conftest import make_settings

    app = create_app(
        make_settings(tmp_path, public_url="https://video.example.com/"), store=store, storage=storage
    )
    with TestClient(app) as client:
        body = submit(client)

    assert body["response_url"].startswith("https://video.example.com/queue/fal-ai/pixverse/requests/")
    job = store.get(body["request_id"])
    assert job is not None and job.base_url == "https://video.example.com"


def test_status_in_queue_is_202_with_position_and_urls(client: TestClient) -> None:
    submit(client)
    request_id = submit(client)["request_id"]

    response = client.get(requests_path(request_id, "/status"))

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "IN_QUEUE"
    assert body["queue_position"] == 1
    assert body["request_id"] == request_id
    assert body.keys() >= URL_KEYS
    assert response.headers["x-fal-request-id"] == request_id


def test_status_in_progress_is_202_with_logs_in_fal_shape(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    store.claim("w", 30)
    store.append_log(request_id, "step 1/4", "DEBUG")

    response = client.get(requests_path(request_id, "/status"), params={"logs": 1})

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "IN_PROGRESS"
    assert body.keys() >= URL_KEYS
    (entry,) = body["logs"]
    assert entry["message"] == "step 1/4"
    assert entry["level"] == "DEBUG"
    assert entry["source"] == "USER"
    assert entry["timestamp"].endswith("+00:00")


def test_status_completed_is_200_with_metrics_and_stays_stable(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    run_job(store, logs=("done",))

    answers = [client.get(requests_path(request_id, "/status"), params={"logs": "true"}) for _ in range(2)]

    for response in answers:
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "COMPLETED"
        assert body["metrics"]["inference_time"] >= 0
        assert [log["message"] for log in body["logs"]] == ["done"]
        assert "error" not in body
    assert answers[0].json() == answers[1].json()


def test_failed_job_status_is_completed_with_error_and_error_type(
    client: TestClient, store: JobStore
) -> None:
    request_id = submit(client)["request_id"]
    job = store.claim("w", 30)
    assert job is not None
    store.fail(job.id, job.attempt, "CUDA out of memory", "internal_error", 500)

    response = client.get(requests_path(request_id, "/status"))

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["error"], body["error_type"]) == (
        "COMPLETED",
        "CUDA out of memory",
        "internal_error",
    )
    assert body["logs"] is None


def test_result_while_running_is_400_still_in_progress(client: TestClient) -> None:
    request_id = submit(client)["request_id"]

    response = client.get(requests_path(request_id))

    assert response.status_code == 400
    assert response.json() == {"detail": "Request is still in progress", "error_type": "request_in_progress"}
    assert response.headers["x-fal-request-id"] == request_id


def test_result_of_a_completed_job_is_its_output(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    output = {
        "video": {
            "url": "http://testserver/files/a/b.mp4",
            "content_type": "video/mp4",
            "file_name": "b.mp4",
            "file_size": 10,
        },
        "seed": 4,
    }
    run_job(store, output)

    response = client.get(requests_path(request_id))

    assert response.status_code == 200
    assert response.json() == output
    assert response.headers["x-fal-request-id"] == request_id


def test_result_of_a_failed_job_is_its_error_status_and_fal_body(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    job = store.claim("w", 30)
    assert job is not None
    store.fail(job.id, job.attempt, "invalid input: bad", "invalid_input", 422)

    response = client.get(requests_path(request_id))

    assert response.status_code == 422
    assert response.json() == {"detail": "invalid input: bad", "error_type": "invalid_input"}
    assert response.headers["x-fal-error-type"] == "invalid_input"


def test_full_endpoint_path_form_of_the_request_routes_works(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    run_job(store)
    base = f"/queue/{ENDPOINT}/requests/{request_id}"

    assert client.get(f"{base}/status").status_code == 200
    assert client.get(base).json()["seed"] == 1
    assert client.put(f"{base}/cancel").json() == {"status": "ALREADY_COMPLETED"}
    with client.stream("GET", f"{base}/status/stream") as stream:
        assert stream.status_code == 200


def test_cancel_answers_fal_codes_and_bodies(client: TestClient, store: JobStore) -> None:
    queued = submit(client)["request_id"]
    running = submit(client)["request_id"]
    store.claim("w", 30)  # the first in line: `queued` is now running
    done_id = queued

    cancel_running = client.put(requests_path(done_id, "/cancel"))
    cancel_queued = client.put(requests_path(running, "/cancel"))
    finished = client.get(requests_path(running, "/status")).json()
    again = client.put(requests_path(running, "/cancel"))
    missing = client.put(requests_path(str(uuid.uuid4()), "/cancel"))
    garbage = client.put(requests_path("not-a-uuid", "/cancel"))

    assert (cancel_running.status_code, cancel_running.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert (cancel_queued.status_code, cancel_queued.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert finished["status"] == "COMPLETED" and finished["error_type"] == "request_cancelled"
    assert (again.status_code, again.json()) == (400, {"status": "ALREADY_COMPLETED"})
    assert (missing.status_code, missing.json()) == (404, {"status": "NOT_FOUND"})
    assert garbage.status_code == 404
    assert client.get(requests_path(running)).status_code == 400  # cancelled: the store's 400 error status


def test_unknown_request_is_404_in_fal_shape_on_status_stream_and_result(client: TestClient) -> None:
    unknown = str(uuid.uuid4())
    for path in (
        requests_path(unknown, "/status"),
        requests_path(unknown, "/status/stream"),
        requests_path(unknown),
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error_type"] == "not_found"
        assert response.headers["x-fal-request-id"]


def test_normal_priority_runs_before_low_whatever_the_order(client: TestClient, store: JobStore) -> None:
    low = submit(client, headers={"X-Fal-Queue-Priority": "low"})["request_id"]
    normal = submit(client, headers={"X-Fal-Queue-Priority": "normal"})["request_id"]

    assert client.get(requests_path(low, "/status")).json()["queue_position"] == 1
    assert client.get(requests_path(normal, "/status")).json()["queue_position"] == 0
    first = store.claim("w", 30)
    assert first is not None and first.id == normal


def test_request_not_started_within_its_timeout_ends_as_504_user_timeout(
    client: TestClient, store: JobStore
) -> None:
    request_id = submit(client, headers={"X-Fal-Request-Timeout": "0.05"})["request_id"]
    time.sleep(0.1)
    store.reap()  # what the API's housekeeping thread does every second

    status = client.get(requests_path(request_id, "/status")).json()
    result = client.get(requests_path(request_id))

    assert status["status"] == "COMPLETED" and status["error_type"] == "request_timeout"
    assert result.status_code == 504
    assert result.headers["x-fal-request-timeout-type"] == "user"
    assert result.json()["error_type"] == "request_timeout"


def test_store_io_0_drops_payloads_after_the_result_was_delivered(
    client: TestClient, store: JobStore
) -> None:
    request_id = submit(client, headers={"X-Fal-Store-IO": "0"})["request_id"]
    run_job(store)

    first = client.get(requests_path(request_id))
    job = store.get(request_id)
    second = client.get(requests_path(request_id))

    assert first.status_code == 200 and first.json()["seed"] == 1
    assert job is not None and job.input is None and job.output is None
    assert second.status_code == 410
    assert second.json()["error_type"] == "result_not_stored"
    assert client.get(requests_path(request_id, "/status")).status_code == 200


def test_store_io_default_keeps_the_result_for_later_reads(client: TestClient, store: JobStore) -> None:
    request_id = submit(client)["request_id"]
    run_job(store)

    assert client.get(requests_path(request_id)).status_code == 200
    assert client.get(requests_path(request_id)).status_code == 200


@pytest.mark.parametrize("method", ["get", "delete", "patch"])
def test_wrong_method_on_a_queue_route_is_405_in_fal_shape(client: TestClient, method: str) -> None:
    response = client.request(method, SUBMIT)

    assert response.status_code == 405
    assert response.json()["error_type"] == "method_not_allowed"


def test_a_key_past_its_queue_limit_gets_429_with_retry_after_and_others_do_not(tmp_path) -> None:
    from framecast.api import create_app
    from tests.api.conftest import KEY_A, KEY_B, auth, make_settings

    settings = make_settings(
        tmp_path, api_keys={"alice": "alice-secret", "bob": "bob-secret"}, max_queued_per_key=2
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        for _ in range(2):
            submit(client, headers=auth(KEY_A))
        refused = client.post(SUBMIT, json={"prompt": "one more"}, headers=auth(KEY_A))
        other = client.post(SUBMIT, json={"prompt": "bob's"}, headers=auth(KEY_B))

    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "10"
    assert refused.headers["x-fal-error-type"] == "queue_full"
    assert refused.json()["error_type"] == "queue_full"
    assert "already has 2 requests waiting" in refused.json()["detail"]
    assert other.status_code == 200
