"""The API under infrastructure faults (api/errors.py, meta.py): the database unreachable is a 503 with
Retry-After in fal's shape while liveness stays up and readiness says why; a full disk is a 507 that names no
path."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from framecast.api import create_app
from tests.api.conftest import SMALL, SUBMIT, make_settings, requests_path
from tests.conftest import SmallDisk
from tests.pg import TempCluster


def test_an_unreachable_database_is_503_with_retry_after_and_readiness_says_so(
    postgres_cluster: TempCluster, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url=postgres_cluster.url)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        queued = client.post(SUBMIT, json=SMALL).json()
        assert client.get("/health/ready").json()["database"] == "ok"

        postgres_cluster.stop_server()
        try:
            answers = [
                client.post(SUBMIT, json=SMALL),
                client.get(requests_path(queued["request_id"], "/status")),
                client.get(requests_path(queued["request_id"])),
            ]
            live, ready = client.get("/health"), client.get("/health/ready")
            metrics = client.get("/metrics")
        finally:
            postgres_cluster.start()
        after = client.get(requests_path(queued["request_id"], "/status"))
        ready_again = client.get("/health/ready")

    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.headers["x-fal-error-type"] == "database_unavailable"
        assert answer.json() == {
            "detail": "The job database is unreachable; retry shortly",
            "error_type": "database_unavailable",
        }
    assert live.status_code == 200 and live.json()["status"] == "ok"  # liveness: the process is fine
    assert ready.status_code == 503 and ready.headers["retry-after"] == "5"
    assert (ready.json()["status"], ready.json()["database"]) == ("unavailable", "unreachable")
    assert metrics.status_code == 200 and "framecast_database_up 0.0" in metrics.text
    assert after.status_code == 202 and ready_again.status_code == 200  # back by itself, no restart


def test_submit_on_a_full_disk_is_507_naming_no_path_and_works_again_once_there_is_room(
    small_disk: SmallDisk,
) -> None:
    settings = make_settings(small_disk.path / "data")  # the SQLite database lives on the small disk
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        assert client.post(SUBMIT, json=SMALL).status_code == 200
        small_disk.fill()
        # SQLite may reuse room its write-ahead log already holds: submits succeed until that is used up.
        for _ in range(500):
            full = client.post(SUBMIT, json=SMALL)
            if full.status_code != 200:
                break
        small_disk.free()
        again = client.post(SUBMIT, json=SMALL)

    assert full.status_code == 507, full.text
    assert full.json() == {
        "detail": "The server has no space left on device; try again later",
        "error_type": "insufficient_storage",
    }
    assert full.headers["retry-after"] == "60"
    assert str(small_disk.path) not in full.text
    assert again.status_code == 200
