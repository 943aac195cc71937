"""``/api/fal/proxy``: the JS client's ``proxyUrl`` calls, dispatched in-process on ``x-fal-target-url``."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from framecast.api.errors import BadProxyTarget
from framecast.api.proxy import target_path
from framecast.jobs.store import JobStore
from tests.api.conftest import ENDPOINT, SMALL, run_job

PROXY = "/api/fal/proxy"


def via_proxy(client: TestClient, method: str, target: str, **kwargs):  # noqa: ANN201
    headers = {"x-fal-target-url": target, **kwargs.pop("headers", {})}
    return client.request(method, PROXY, headers=headers, **kwargs)


def test_queue_calls_through_the_proxy_reach_the_same_handlers(client: TestClient, store: JobStore) -> None:
    submitted = via_proxy(client, "POST", f"https://queue.fal.run/{ENDPOINT}", json=SMALL).json()
    request_id = submitted["request_id"]
    queued = via_proxy(
        client, "GET", f"https://queue.fal.run/fal-ai/pixverse/requests/{request_id}/status?logs=1"
    )
    run_job(store)
    status = via_proxy(client, "GET", f"https://queue.fal.run/fal-ai/pixverse/requests/{request_id}/status")
    result = via_proxy(client, "GET", f"https://queue.fal.run/fal-ai/pixverse/requests/{request_id}")
    cancel = via_proxy(client, "PUT", f"https://queue.fal.run/fal-ai/pixverse/requests/{request_id}/cancel")

    assert submitted["status"] == "IN_QUEUE"
    assert submitted["response_url"].startswith("http://testserver/queue/fal-ai/pixverse/requests/")
    assert (queued.status_code, queued.json()["status"]) == (202, "IN_QUEUE")
    assert (status.status_code, status.json()["status"]) == (200, "COMPLETED")
    assert result.json()["seed"] == 1
    assert result.headers["x-fal-request-id"] == request_id
    assert (cancel.status_code, cancel.json()) == (400, {"status": "ALREADY_COMPLETED"})


def test_a_webhook_query_in_the_target_url_is_kept(client: TestClient, store: JobStore) -> None:
    target = f"https://queue.fal.run/{ENDPOINT}?fal_webhook=https%3A%2F%2Fexample.com%2Fhook"
    request_id = via_proxy(client, "POST", target, json=SMALL).json()["request_id"]

    job = store.get(request_id)
    assert job is not None and job.webhook_url == "https://example.com/hook"


def test_validation_errors_come_back_through_the_proxy(client: TestClient) -> None:
    response = via_proxy(client, "POST", f"https://fal.run/{ENDPOINT}", json={"prompt": " "})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "prompt"]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (f"https://fal.run/{ENDPOINT}", f"/{ENDPOINT}"),
        (f"https://queue.fal.run/{ENDPOINT}", f"/queue/{ENDPOINT}"),
        (
            "https://queue.fal.run/fal-ai/pixverse/requests/abc/status",
            "/queue/fal-ai/pixverse/requests/abc/status",
        ),
        (f"https://localhost:8443/queue/{ENDPOINT}", f"/queue/{ENDPOINT}"),
        (f"http://my.host/{ENDPOINT}", f"/{ENDPOINT}"),
    ],
)
def test_target_urls_map_to_local_paths(target: str, path: str) -> None:
    assert target_path(target)[0] == path


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "fal-ai/pixverse/v5.5/text-to-video",
        "https://fal.run/fal-ai/flux/dev",
        "https://queue.fal.run/fal-ai/kling-video/requests/x",
        "ftp://fal.run/fal-ai/pixverse/v5.5/text-to-video",
        "https://fal.run/",
        "http://[::1/fal-ai/pixverse/v5.5/text-to-video",
    ],
)
def test_missing_or_foreign_targets_are_400_in_fal_shape(client: TestClient, target: str | None) -> None:
    headers = {} if target is None else {"x-fal-target-url": target}
    response = client.post(PROXY, json=SMALL, headers=headers)

    assert response.status_code == 400
    assert response.json()["error_type"] == "invalid_proxy_target"
    assert response.headers["x-fal-request-id"]
    if target:
        with pytest.raises(BadProxyTarget):
            target_path(target)
