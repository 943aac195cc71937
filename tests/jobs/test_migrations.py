from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, select, update

from framecast.errors import ConfigError
from framecast.jobs import JobStatus, JobStore
from framecast.jobs.database import connect, utcnow
from framecast.jobs.migrations import LATEST, migrate
from framecast.jobs.tables import jobs, metadata, schema_version


def make_v1_database(path: Path) -> str:
    """A database as release 1 left it, with one queued job that has a webhook."""
    url = f"sqlite:///{path}"
    engine = connect(url)
    assert migrate(engine, target=1) == 1
    with engine.begin() as conn:
        conn.execute(
            insert(jobs).values(
                id="00000000-0000-4000-8000-000000000001",
                endpoint="fal-ai/pixverse/v5.5/text-to-video",
                owner="",
                status="IN_QUEUE",
                priority=0,
                input={"prompt": "old"},
                attempt=0,
                cancel_requested=False,
                webhook_url="http://127.0.0.1:9/hook",
                store_io=True,
                base_url="",
                created_at=utcnow(),
            )
        )
    assert "webhooks" not in inspect(engine).get_table_names()
    engine.dispose()
    return url


def versions_in(url: str) -> list[int]:
    engine = connect(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(schema_version.c.version)).scalars())
    finally:
        engine.dispose()


def test_opening_a_v1_database_upgrades_it_and_keeps_its_jobs(tmp_path: Path) -> None:
    url = make_v1_database(tmp_path / "v1.db")

    store = JobStore.open(url)
    try:
        job = store.claim("w", 30)
        assert job is not None and job.input == {"prompt": "old"}
        assert store.complete(job.id, job.attempt, {"video": "x"})  # writes the v2 webhook outbox
        assert store.get(job.id).status is JobStatus.COMPLETED  # type: ignore[union-attr]
        assert store.claim_webhook("d", 30) is not None
        assert versions_in(url) == [LATEST]
    finally:
        store.close()


def test_the_migrated_schema_is_the_one_the_store_queries(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate(engine)
    inspector = inspect(engine)

    for table in metadata.sorted_tables:
        assert {c["name"] for c in inspector.get_columns(table.name)} == set(table.columns.keys()), table.name
        assert {i["name"] for i in inspector.get_indexes(table.name)} >= {i.name for i in table.indexes}
    engine.dispose()


def test_reopening_an_up_to_date_database_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    JobStore.open(url).close()
    JobStore.open(url).close()

    assert versions_in(url) == [LATEST]


def test_a_database_from_a_newer_release_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'future.db'}"
    JobStore.open(url).close()
    engine = connect(url)
    with engine.begin() as conn:
        conn.execute(update(schema_version).values(version=LATEST + 1))
    engine.dispose()

    with pytest.raises(ConfigError, match="newer than this release"):
        JobStore.open(url)


def test_several_processes_opening_a_new_database_at_once_migrate_it_once(database_url: str) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            JobStore.open(database_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert versions_in(database_url) == [LATEST]


def test_v4_counts_the_attempts_unfinished_jobs_had_used_as_crashes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v3.db'}"
    engine = connect(url)
    migrate(engine, target=3)
    with engine.begin() as conn:
        for job_id, status, attempt in (
            ("queued", "IN_QUEUE", 1),
            ("running", "IN_PROGRESS", 2),
            ("new", "IN_QUEUE", 0),
        ):
            conn.exec_driver_sql(
                "INSERT INTO jobs (id, endpoint, owner, status, priority, attempt, cancel_requested, store_io, "
                "base_url, created_at) VALUES (?, 'e', '', ?, 0, ?, 0, 1, '', '2026-01-01 00:00:00')",
                (job_id, status, attempt),
            )
    engine.dispose()

    store = JobStore.open(url)
    try:
        crashes = {job_id: store.get(job_id).crashes for job_id in ("queued", "running", "new")}  # type: ignore[union-attr]
    finally:
        store.close()
    assert crashes == {"queued": 1, "running": 1, "new": 0}  # a running attempt is not over yet
