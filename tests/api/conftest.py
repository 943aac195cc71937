"""Fixtures for the API tests: a real SQLite store and local storage in tmp_path, the app in-process, and a
live uvicorn server with a real worker (InstantEngine) on threads for the tests that need rendering."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from framecast.api import create_app
from framecast.api.connections import uvicorn_config
from framecast.config import Settings
from framecast.egress import EgressPolicy
from framecast.engine.instant import InstantEngine
from framecast.jobs.models import Job
from framecast.jobs.store import JobStore
from framecast.storage import LocalStorage
from framecast.worker import run_worker
from tests.fake_dns import FakeDNS
from tests.live_server import free_port

ENDPOINT = "fal-ai/pixverse/v5.5/text-to-video"
SUBMIT = f"/queue/{ENDPOINT}"
SYNC = f"/{ENDPOINT}"
KEY_A = "alice:alice-secret"
KEY_B = "bob:bob-secret"
SMALL = {"prompt": "a fox in snow", "resolution": "360p"}


def requests_path(request_id: str, suffix: str = "") -> str:
    return f"/queue/fal-ai/pixverse/requests/{request_id}{suffix}"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Key {key}"}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    # queue_position_seconds 0: positions read exactly, as the tests that check them expect (positions.py).
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "poll_seconds": 0.02,
        "heartbeat_seconds": 0.2,
        "queue_position_seconds": 0.0,
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def egress_for(settings: Settings, dns: FakeDNS | None = None) -> EgressPolicy:
    """The settings' egress policy, its names answered by FakeDNS: no test asks a real DNS server."""
    return EgressPolicy.from_setting(settings.webhook_allow, dns or FakeDNS())


@pytest.fixture
def dns() -> FakeDNS:
    return FakeDNS()


@pytest.fixture
def app(settings: Settings, store: JobStore, storage: LocalStorage, dns: FakeDNS) -> FastAPI:
    return create_app(settings, store=store, storage=storage, egress=egress_for(settings, dns))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """The app in-process, lifespan running; no worker, so tests move jobs through the store themselves."""
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for a module's tests that only read answers (validation, headers): built once, for speed."""
    settings = make_settings(tmp_path_factory.mktemp("shared"))
    app = create_app(settings, egress=egress_for(settings))
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def submit(client: TestClient | httpx.Client, body: dict | None = None, **kwargs: Any) -> dict[str, Any]:
    response = client.post(SUBMIT, json=SMALL if body is None else body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def run_job(store: JobStore, output: dict[str, Any] | None = None, logs: tuple[str, ...] = ()) -> Job:
    """Play the worker's part for the next queued job: claim it, log, complete it."""
    job = store.claim("test-worker", 30)
    assert job is not None
    for message in logs:
        store.append_log(job.id, message)
    store.complete(job.id, job.attempt, output or {"video": {"url": "http://x/files/k.mp4"}, "seed": 1})
    return job


@dataclass
class Live:
    url: str
    settings: Settings
    store: JobStore
    client: httpx.Client


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """uvicorn on a free port plus a real worker thread rendering with InstantEngine, both in this process."""
    settings = make_settings(tmp_path, port=free_port(), api_keys={"alice": "alice-secret"})
    yield from _serve(settings, with_worker=True)


@pytest.fixture
def live_without_worker(tmp_path: Path) -> Iterator[Live]:
    """The same live API with nothing rendering: requests stay queued."""
    settings = make_settings(tmp_path, port=free_port(), api_keys={"alice": "alice-secret"})
    yield from _serve(settings, with_worker=False)


def _serve(settings: Settings, with_worker: bool) -> Iterator[Live]:
    store = JobStore.open(settings.database_url, max_attempts=settings.max_attempts)
    app = create_app(settings, store=store, egress=egress_for(settings))
    server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning"))
    stop = threading.Event()
    threads = [threading.Thread(target=server.run, daemon=True)]
    if with_worker:
        worker_kwargs = {"engine_factory": lambda s: InstantEngine(), "stop": stop}
        threads.append(
            threading.Thread(target=run_worker, args=(settings,), kwargs=worker_kwargs, daemon=True)
        )
    for thread in threads:
        thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    with httpx.Client(base_url=url, headers=auth(KEY_A), timeout=10) as client:
        yield Live(url, settings, store, client)
    stop.set()
    server.should_exit = True
    for thread in threads:
        thread.join(timeout=10)
    store.close()
