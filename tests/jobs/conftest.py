from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.jobs import JobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    store = JobStore.open(f"sqlite:///{tmp_path / 'data' / 'framecast.db'}", max_attempts=3)
    yield store
    store.close()
