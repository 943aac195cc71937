from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from framecast.jobs import JobStore
from tests.pg import TempCluster


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """FRAMECAST_TEST_POSTGRES_URL, else a throwaway local cluster (tests/pg.py), else ``None``."""
    if os.environ.get("FRAMECAST_TEST_POSTGRES_URL"):
        yield os.environ["FRAMECAST_TEST_POSTGRES_URL"]
        return
    try:
        cluster = TempCluster()
    except (FileNotFoundError, subprocess.SubprocessError, KeyError, LookupError) as exc:
        yield None  # the PostgreSQL cases skip, saying why
        print(f"no PostgreSQL for the tests: {exc}")
        return
    yield cluster.url
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on SQLite and on PostgreSQL (its public schema dropped before each test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'framecast.db'}"
    url = request.getfixturevalue("postgres_url")
    if url is None:
        pytest.skip("no PostgreSQL: set FRAMECAST_TEST_POSTGRES_URL or install the postgresql server package")
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[JobStore]:
    store = JobStore.open(database_url, max_attempts=3)
    yield store
    store.close()
