"""The request boundary: ``x-fal-request-id`` on every response, and a logged 500 for the unexpected."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import SMALL, SUBMIT, SYNC, Live, auth, requests_path, run_job, submit

ALICE = auth("alice:alice-secret")


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/health", {}, 200),
        ("get", "/openapi.json", {}, 200),
        ("get", "/no/such/route", {}, 404),
        ("get", "/files/abc/missing.mp4", {}, 404),
        ("post", SUBMIT, {"json": {"prompt": ""}}, 422),
        ("post", SYNC, {"content": b"[", "headers": {"content-type": "application/json"}}, 422),
        ("post", SUBMIT, {"content": b"x", "headers": {"content-type": "text/plain"}}, 415),
        ("delete", SUBMIT, {}, 405),
        ("get", "/api/fal/proxy", {}, 400),
        ("get", requests_path(str(uuid.uuid4()), "/status"), {}, 404),
    ],
)
def test_every_response_carries_a_request_id(
    shared_client: TestClient, method: str, path: str, kwargs: dict, status: int
) -> None:
    response = shared_client.request(method, path, **kwargs)

    assert response.status_code == status
    assert uuid.UUID(response.headers["x-fal-request-id"]).version == 4


def test_responses_about_a_request_carry_its_id(client: TestClient, store) -> None:
    request_id = submit(client)["request_id"]
    run_job(store)

    for path in (requests_path(request_id, "/status"), requests_path(request_id)):
        assert client.get(path).headers["x-fal-request-id"] == request_id
    assert client.put(requests_path(request_id, "/cancel")).headers["x-fal-request-id"] == request_id


def test_an_unexpected_error_is_a_logged_500_in_fal_shape_with_a_request_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("database on fire")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "error_type": "internal_error"}
    assert response.headers["x-fal-request-id"]
    assert "database on fire" in caplog.text


def test_submit_works_with_headers_in_any_case(shared_client: TestClient) -> None:
    response = shared_client.post(SUBMIT, json=SMALL, headers={"x-fal-queue-priority": "LOW"})

    assert response.status_code == 200


@pytest.mark.parametrize("suffix", ["/status", "/status/stream", "", "/cancel"])
def test_a_request_id_with_control_characters_gets_a_404_with_a_fresh_id(
    live_without_worker: Live, suffix: str
) -> None:
    # uvicorn drops the connection if a header value holds a control character: the id must not be echoed.
    method = "PUT" if suffix == "/cancel" else "GET"
    response = live_without_worker.client.request(method, requests_path("%1F", suffix), headers=ALICE)

    assert response.status_code == 404
    assert uuid.UUID(response.headers["x-fal-request-id"]).version == 4
