"""Fixtures shared across the suite: the real job store and file storage of a test's ``settings``.

Each test module (or folder conftest) defines ``settings`` for its needs; these build on whichever is in scope.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from framecast.config import Settings
from framecast.jobs import JobStore
from framecast.storage import LocalStorage, open_storage


@pytest.fixture
def store(settings: Settings) -> Iterator[JobStore]:
    store = JobStore.open(settings.database_url, max_attempts=settings.max_attempts)
    yield store
    store.close()


@pytest.fixture
def storage(settings: Settings) -> LocalStorage:
    opened = open_storage(settings.storage_url)
    assert isinstance(opened, LocalStorage)
    return opened
