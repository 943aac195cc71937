from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

from framecast.jobs import JobStore

# Opt-in: FRAMECAST_TEST_POSTGRES_URL=postgresql://user@host:port/db runs every store test on PostgreSQL too.
# The database's public schema is dropped before each test.
POSTGRES_URL = os.environ.get("FRAMECAST_TEST_POSTGRES_URL", "")


@pytest.fixture(params=["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'framecast.db'}"
    engine = create_engine(make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def store(database_url: str) -> Iterator[JobStore]:
    store = JobStore.open(database_url, max_attempts=3)
    yield store
    store.close()
