"""`framecast serve` supervising its workers as a real process tree (server.py): workers die with their server,
a group SIGTERM hands running jobs back without using an attempt, and a restart never doubles the workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from framecast.jobs import Job, JobStatus, JobStore
from framecast.server import watch_parent
from tests.live_server import LiveServer

ENDPOINT = "fal-ai/pixverse/v5.5/text-to-video"
BODY = {"prompt": "supervised", "resolution": "360p"}
FAST_LEASE = {
    "FRAMECAST_LEASE_SECONDS": "3",
    "FRAMECAST_HEARTBEAT_SECONDS": "0.3",
    "FRAMECAST_STOP_GRACE_SECONDS": "15",
}


def paced(steps: int, step_seconds: float) -> tuple[str, ...]:
    return ("-m", "tests.instant_serve", str(steps), str(step_seconds))


def workers_for(data_dir: Path) -> list[int]:
    """Every live worker process (a multiprocessing spawn child) serving ``data_dir``, whoever its parent."""
    marker = f"FRAMECAST_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"spawn_main" not in (entry / "cmdline").read_bytes():
                continue
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if "zombie" in (entry / "status").read_text():
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def submit(server: LiveServer) -> str:
    response = httpx.post(f"{server.url}/queue/{ENDPOINT}", json=BODY, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["request_id"]


def rendering(store: JobStore, job_id: str, step: int = 2) -> bool:
    job = store.get(job_id)
    if job is None or job.status is not JobStatus.IN_PROGRESS:
        return False
    return any(e.message.startswith(f"step {step}/") for e in store.logs(job_id))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    opened = JobStore.open(f"sqlite:///{tmp_path / 'framecast.db'}")
    yield opened
    opened.close()


def test_kill_9_of_serve_leaves_no_worker_alive_after_5_seconds(tmp_path: Path, store: JobStore) -> None:
    server = LiveServer(tmp_path, env=FAST_LEASE, args=("--workers", "2"), launcher=paced(400, 0.05))
    try:
        server.wait_ready()
        job_id = submit(server)
        wait_for(lambda: rendering(store, job_id), 30, "the render")
        wait_for(lambda: len(workers_for(tmp_path)) == 2, 30, "two workers")

        server.process.send_signal(signal.SIGKILL)  # the server alone, as an OOM killer or a crash would
        server.process.wait(timeout=10)
        wait_for(lambda: not workers_for(tmp_path), 5, "the workers to die with their server")
    finally:
        server.close()

    job = store.get(job_id)
    assert job is not None and job.status is JobStatus.IN_QUEUE  # handed back on the way out, not left leased
    assert (job.attempt, job.crashes) == (1, 0)


def test_a_group_sigterm_hands_the_running_job_back_without_using_an_attempt(
    tmp_path: Path, store: JobStore
) -> None:
    with LiveServer(tmp_path, env=FAST_LEASE, launcher=paced(400, 0.05)) as server:
        server.wait_ready()
        job_id = submit(server)
        wait_for(lambda: rendering(store, job_id, 3), 30, "the render")

        os.killpg(server.process.pid, signal.SIGTERM)  # what systemd sends: every process of the unit
        assert server.process.wait(timeout=30) == 0, server.output()[-3000:]

    released: Job = store.get(job_id)  # type: ignore[assignment]
    assert released.status is JobStatus.IN_QUEUE
    assert (released.attempt, released.crashes) == (1, 0)
    assert any("back in the queue" in e.message for e in store.logs(job_id))

    with LiveServer(tmp_path, env=FAST_LEASE, launcher=paced(2, 0.0)) as again:
        again.wait_ready()
        wait_for(lambda: store.get(job_id).status is JobStatus.COMPLETED, 30, "the job")  # type: ignore[union-attr]
    done: Job = store.get(job_id)  # type: ignore[assignment]
    assert done.error is None and (done.attempt, done.crashes) == (2, 0)


def test_a_restarted_serve_never_runs_more_workers_than_asked(tmp_path: Path, store: JobStore) -> None:
    # Slow steps: the old workers take seconds to hand their jobs back after their server is killed, so they
    # are still alive while the new server starts.
    args, launcher = ("--workers", "2"), paced(100, 3.0)
    first = LiveServer(tmp_path, env=FAST_LEASE, args=args, launcher=launcher)
    counts: list[int] = []
    try:
        first.wait_ready()
        jobs = [submit(first), submit(first)]
        wait_for(lambda: all(rendering(store, j, 1) for j in jobs), 30, "both renders")
        old = set(workers_for(tmp_path))
        assert len(old) == 2

        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                counts.append(len(workers_for(tmp_path)))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with LiveServer(tmp_path, env=FAST_LEASE, args=args, launcher=paced(2, 0.0)) as second:
                second.wait_ready()
                wait_for(lambda: len(set(workers_for(tmp_path)) - old) == 2, 30, "two new workers")
                for job_id in jobs:
                    wait_for(lambda j=job_id: store.get(j).status is JobStatus.COMPLETED, 30, "the jobs")  # type: ignore[misc, union-attr]
        finally:
            sampling.set()
            sampler.join()
    finally:
        first.close()

    assert counts and max(counts) <= 2, counts
    assert all(store.get(j).crashes == 0 for j in jobs)  # type: ignore[union-attr]


def test_the_watchdog_notices_its_parent_is_gone_when_the_pipe_closes() -> None:
    reader, writer = multiprocessing.get_context("spawn").Pipe(duplex=False)
    gone = threading.Event()
    watcher = threading.Thread(target=watch_parent, args=(reader, gone.set), daemon=True)
    watcher.start()
    time.sleep(0.1)
    assert not gone.is_set()  # the parent's end is open: nothing happens

    writer.close()  # what the kernel does to every descriptor of a process that dies

    assert gone.wait(5)
