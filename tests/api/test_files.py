"""``GET /files/{key}``: whole files, byte ranges (206/416), the MP4 content type, expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from framecast.jobs.models import NewJob
from framecast.jobs.store import JobStore, utcnow
from framecast.storage import LocalStorage

DATA = bytes(range(256)) * 40  # 10240 bytes, every offset distinguishable
KEY = "tok3n/clip-a1.mp4"


@pytest.fixture
def stored(tmp_path: Path, storage: LocalStorage) -> str:
    src = tmp_path / "clip.mp4"
    src.write_bytes(DATA)
    storage.put(KEY, src, "video/mp4")
    return f"/files/{KEY}"


def test_whole_file_is_served_as_video_mp4_with_accept_ranges(client: TestClient, stored: str) -> None:
    response = client.get(stored)

    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-fal-request-id"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len(DATA) - 1),
        ("bytes=-16", len(DATA) - 16, len(DATA) - 1),
        ("bytes=10200-99999", 10200, len(DATA) - 1),
    ],
)
def test_a_range_request_is_206_with_exactly_those_bytes(
    client: TestClient, stored: str, header: str, start: int, end: int
) -> None:
    response = client.get(stored, headers={"Range": header})

    assert response.status_code == 206
    assert response.content == DATA[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{len(DATA)}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "video/mp4"


def test_an_unsatisfiable_range_is_416_with_the_size(client: TestClient, stored: str) -> None:
    response = client.get(stored, headers={"Range": f"bytes={len(DATA)}-"})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


def test_head_gives_the_size_without_a_body(client: TestClient, stored: str) -> None:
    response = client.head(stored)

    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.content == b""


@pytest.mark.parametrize(
    "path", ["/files/tok3n/other.mp4", "/files/../data/framecast.db", "/files/tok3n/%2e%2e/x"]
)
def test_missing_or_escaping_keys_are_404(client: TestClient, stored: str, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.json()["error_type"] == "not_found"


def test_an_expired_file_is_404_even_before_housekeeping_deletes_it(
    client: TestClient, store: JobStore, stored: str
) -> None:
    job = store.enqueue(NewJob(endpoint="e", input={}))
    store.record_file(job.id, 0, KEY, utcnow() - timedelta(seconds=1))

    assert client.get(stored).status_code == 404


def test_a_file_not_yet_expired_is_served(client: TestClient, store: JobStore, stored: str) -> None:
    job = store.enqueue(NewJob(endpoint="e", input={}))
    store.record_file(job.id, 0, KEY, utcnow() + timedelta(hours=1))

    assert client.get(stored).status_code == 200
