"""Fixtures shared across the suite: the real job store and file storage of a test's ``settings``; a PostgreSQL
server of a test's own (to stop and start); a small real filesystem that fills up.

Each test module (or folder conftest) defines ``settings`` for its needs; these build on whichever is in scope.
"""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from framecast.config import Settings
from framecast.jobs import JobStore
from framecast.storage import LocalStorage, open_storage
from tests.pg import TempCluster


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


@pytest.fixture
def postgres_cluster() -> Iterator[TempCluster]:
    """A PostgreSQL server of this test's own, to stop and start (tests/pg.py); skips when none can be made."""
    try:
        cluster = TempCluster()
    except (FileNotFoundError, subprocess.SubprocessError, KeyError, LookupError) as exc:
        pytest.skip(f"no PostgreSQL server for an outage test: {exc}")
    yield cluster
    cluster.stop()


class SmallDisk:
    """A 4 MiB tmpfs: a real filesystem that fills up, so writes fail with the kernel's own ENOSPC."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / "ballast"

    def fill(self) -> None:
        """Take every free byte (bounded: the filesystem is 4 MiB)."""
        with self.ballast.open("ab", buffering=0) as out:
            for size in (64 * 1024, 1024, 1):
                for _ in range(4 * 1024 * 1024 // size + 1):
                    try:
                        out.write(b"\0" * size)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
                        break

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full-disk test (needs root): {done.stderr.strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
