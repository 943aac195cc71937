"""Housekeeping (housekeeping.py): expired files, and requests past FRAMECAST_RETENTION_DAYS with their files."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from framecast.config import Settings
from framecast.housekeeping import delete_expired
from framecast.jobs import JobStore, NewJob
from framecast.jobs.database import utcnow
from framecast.storage import LocalStorage


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data").resolved()


def finished_job_with_file(
    store: JobStore, storage: LocalStorage, tmp_path: Path, name: str
) -> tuple[str, str]:
    job = store.enqueue(NewJob(endpoint="fal-ai/pixverse/v5.5/text-to-video", input={"prompt": name}))
    claimed = store.claim("w", 30)
    assert claimed is not None and claimed.id == job.id
    source = tmp_path / f"{name}.mp4"
    source.write_bytes(b"video")
    key = f"tok-{name}/{job.id}-a1.mp4"
    storage.put(key, source, "video/mp4")
    store.record_file(job.id, claimed.attempt, key, None)
    store.complete(job.id, claimed.attempt, {"video": {"url": key}})
    return job.id, key


def test_without_retention_finished_requests_and_their_files_are_kept(store, storage, tmp_path):
    job_id, key = finished_job_with_file(store, storage, tmp_path, "kept")
    assert delete_expired(store, storage, 0, now=utcnow() + timedelta(days=3650)) == (0, 0)
    assert store.get(job_id) is not None and storage.local_path(key) is not None


def test_requests_past_retention_go_with_their_files_and_newer_ones_stay(store, storage, tmp_path):
    old_id, old_key = finished_job_with_file(store, storage, tmp_path, "old")
    between = utcnow()
    time.sleep(0.01)
    new_id, new_key = finished_job_with_file(store, storage, tmp_path, "new")

    # A day after `between`, with one day of retention: the first request is past it, the second is not.
    assert delete_expired(store, storage, 1.0, now=between + timedelta(days=1)) == (0, 1)
    assert store.get(old_id) is None and storage.local_path(old_key) is None
    assert store.get(new_id) is not None and storage.local_path(new_key) is not None


def test_an_expired_file_goes_and_its_request_stays(store, storage, tmp_path):
    job_id, key = finished_job_with_file(store, storage, tmp_path, "short-lived")
    store.forget_file(key)
    store.record_file(job_id, 1, key, utcnow() - timedelta(seconds=1))
    assert delete_expired(store, storage) == (1, 0)
    assert storage.local_path(key) is None and store.expired_files() == []
    assert store.get(job_id) is not None


def test_a_worker_report_a_day_old_goes_and_a_fresh_one_stays(store, storage):
    store.report_worker("dead-worker", {"engine": "instant"})
    time.sleep(0.01)
    between = utcnow()
    time.sleep(0.01)
    store.report_worker("live-worker", {"engine": "instant"})

    delete_expired(store, storage, now=between + timedelta(days=1))  # a day after `between`

    assert [worker for worker, _, _ in store.worker_reports(between - timedelta(days=1))] == ["live-worker"]
