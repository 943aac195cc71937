"""The official fal-client 1.0.3, unchanged, against a live Framecast server over plain HTTP.

Plain HTTP needs the client's two URL formats set (they are read at call time); TLS by environment variables alone is
covered in test_python_client_tls.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import fal_client
import pytest
from fal_client.client import FalClientHTTPError

from tests.clients.conftest import ENDPOINT, KEY, OTHER_KEY
from tests.live_server import LiveServer, probe_mp4

SMALL = {"prompt": "a red fox running through snow", "resolution": "360p", "aspect_ratio": "1:1", "seed": 7}


@pytest.fixture
def client(server: LiveServer, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - the fal_client module itself
    """The module-level API exactly as fal's docs use it, pointed at the live server."""
    monkeypatch.setattr(fal_client.client, "RUN_URL_FORMAT", f"{server.url}/")
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{server.url}/queue/")
    monkeypatch.setenv("FAL_KEY", KEY)
    return fal_client


def test_run_returns_a_real_mp4_of_the_requested_size(client, tmp_path: Path) -> None:
    result = client.run(ENDPOINT, arguments={"prompt": "waves at dusk", "seed": 3})

    assert result["video"]["content_type"] == "video/mp4"
    assert result["seed"] == 3
    video = probe_mp4(result["video"]["url"], tmp_path / "run.mp4")
    assert (video["width"], video["height"]) == (1280, 720)
    assert video["frames"] / video["fps"] == pytest.approx(5.0)
    assert video["codec"] == "h264"
    assert video["bytes"] == result["video"]["file_size"]


def test_subscribe_streams_step_logs_to_on_queue_update(client) -> None:
    updates: list[fal_client.Status] = []

    result = client.subscribe(ENDPOINT, arguments=SMALL, with_logs=True, on_queue_update=updates.append)

    messages = [log["message"] for u in updates if isinstance(u, fal_client.InProgress) for log in u.logs]
    assert any("step" in message for message in messages)
    assert isinstance(updates[-1], fal_client.Completed)
    assert updates[-1].metrics["inference_time"] > 0
    assert result["video"]["url"].startswith("http://127.0.0.1")


def test_submit_then_status_then_result_by_id(client) -> None:
    handle = client.submit(ENDPOINT, arguments=SMALL)
    first = client.status(ENDPOINT, handle.request_id, with_logs=True)
    assert isinstance(first, fal_client.Queued | fal_client.InProgress | fal_client.Completed)

    result = client.result(ENDPOINT, handle.request_id)

    assert isinstance(client.status(ENDPOINT, handle.request_id), fal_client.Completed)
    assert result["seed"] == 7


def test_same_seed_gives_the_same_file_size_and_a_reported_seed(client) -> None:
    first = client.run(ENDPOINT, arguments=SMALL)
    second = client.run(ENDPOINT, arguments=SMALL)
    assert first["video"]["file_size"] == second["video"]["file_size"]
    assert first["video"]["url"] != second["video"]["url"]


def test_cancel_of_a_queued_request_ends_it_as_cancelled(client) -> None:
    # A long request keeps the single worker busy so the second one is still queued when cancelled.
    busy = client.submit(ENDPOINT, arguments={**SMALL, "resolution": "720p", "duration": "10"})
    queued = client.submit(ENDPOINT, arguments=SMALL)

    client.cancel(ENDPOINT, queued.request_id)
    client.cancel(ENDPOINT, busy.request_id)

    for handle in (queued, busy):
        status = client.status(ENDPOINT, handle.request_id)
        while not isinstance(status, fal_client.Completed):
            status = client.status(ENDPOINT, handle.request_id)
        with pytest.raises(FalClientHTTPError) as failure:
            client.result(ENDPOINT, handle.request_id)
        assert "cancel" in str(failure.value).lower()


def test_a_request_is_invisible_to_another_key(client) -> None:
    handle = client.submit(ENDPOINT, arguments=SMALL)
    stranger = fal_client.SyncClient(key=OTHER_KEY)

    with pytest.raises(FalClientHTTPError) as failure:
        stranger.status(ENDPOINT, handle.request_id)
    assert failure.value.status_code in (403, 404)
    with pytest.raises(FalClientHTTPError):
        stranger.cancel(ENDPOINT, handle.request_id)
    client.result(ENDPOINT, handle.request_id)


def test_a_wrong_key_is_refused_with_401(client) -> None:
    with pytest.raises(FalClientHTTPError) as failure:
        fal_client.SyncClient(key="client-tests:wrong").run(ENDPOINT, arguments=SMALL)
    assert failure.value.status_code == 401


def test_validation_errors_reach_the_client_as_422(client) -> None:
    with pytest.raises(FalClientHTTPError) as failure:
        client.run(ENDPOINT, arguments={"prompt": "x", "resolution": "1080p", "duration": "10"})
    assert failure.value.status_code == 422


def test_subscribe_async_returns_the_result(client) -> None:
    async def go() -> dict:
        return await client.subscribe_async(ENDPOINT, arguments=SMALL, with_logs=True)

    result = asyncio.run(go())
    assert result["video"]["file_name"].endswith(".mp4")
