from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from framecast.errors import ConfigError, QueueFull
from framecast.jobs import CancelOutcome, JobStatus, JobStore, NewJob, Priority
from framecast.jobs.database import utcnow
from framecast.jobs.models import QueueLimits
from framecast.jobs.store import NO_RETRY_MESSAGE

REPO = Path(__file__).resolve().parents[2]

CLAIMER = """
import sys, time
from pathlib import Path
from framecast.jobs import JobStore
url, name, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
store = JobStore.open(url)
(folder / name).touch()
while not (folder / "go").exists():
    time.sleep(0.005)
while (job := store.claim(name, 30)) is not None:
    print(job.id, flush=True)
    time.sleep(0.002)  # a moment of work, so both processes keep contending
"""


def new_job(prompt: str = "a fox", **kwargs: object) -> NewJob:
    return NewJob(endpoint="fal-ai/pixverse/v5.5/text-to-video", input={"prompt": prompt}, **kwargs)  # type: ignore[arg-type]


def expire_lease(store: JobStore, job_id: str, attempt: int) -> None:
    assert store.heartbeat(job_id, attempt, -1.0)


def test_enqueue_returns_a_queued_job_with_a_uuid4_id_and_aware_utc_times(store: JobStore) -> None:
    job = store.enqueue(new_job(owner="key1", start_timeout_seconds=30))

    assert uuid.UUID(job.id).version == 4
    assert job.status is JobStatus.IN_QUEUE
    assert job.owner == "key1"
    assert job.input == {"prompt": "a fox"}
    assert job.attempt == 0
    assert job.created_at.tzinfo is timezone.utc
    assert job.start_deadline is not None
    assert job.start_deadline - job.created_at == timedelta(seconds=30)
    assert store.get(job.id) == job


def test_get_of_an_unknown_id_is_none(store: JobStore) -> None:
    assert store.get(str(uuid.uuid4())) is None


def test_queue_position_counts_the_jobs_ahead_with_normal_priority_before_low(store: JobStore) -> None:
    low = store.enqueue(new_job(priority=Priority.low))
    first = store.enqueue(new_job())
    second = store.enqueue(new_job())

    assert [store.queue_position(j.id) for j in (first, second, low)] == [0, 1, 2]

    store.claim("w", 30)

    assert [store.queue_position(j.id) for j in (first, second, low)] == [None, 0, 1]
    assert store.queue_position(str(uuid.uuid4())) is None


def test_get_with_position_reads_the_job_and_its_place_in_line_together(store: JobStore) -> None:
    low = store.enqueue(new_job(priority=Priority.low))
    first = store.enqueue(new_job())
    second = store.enqueue(new_job())
    store.claim("w", 30)

    running, running_position = store.get_with_position(first.id)  # type: ignore[misc]
    assert (running.status, running_position) == (JobStatus.IN_PROGRESS, None)
    for job, expected in ((second, 0), (low, 1)):
        found = store.get_with_position(job.id)
        assert found is not None and found[0] == store.get(job.id) and found[1] == expected
    assert store.get_with_position(str(uuid.uuid4())) is None


def test_claim_takes_normal_priority_first_then_the_oldest(store: JobStore) -> None:
    low = store.enqueue(new_job(priority=Priority.low))
    older = store.enqueue(new_job())
    newer = store.enqueue(new_job())

    claimed = [store.claim("w", 30) for _ in range(4)]

    assert [j.id if j else None for j in claimed] == [older.id, newer.id, low.id, None]
    job = claimed[0]
    assert job is not None
    assert job.status is JobStatus.IN_PROGRESS
    assert job.attempt == 1
    assert job.worker_id == "w"
    assert job.lease_expires_at is not None and job.lease_expires_at > utcnow()


def test_two_threads_claiming_at_once_never_take_the_same_job(store: JobStore) -> None:
    ids = {store.enqueue(new_job(str(i))).id for i in range(40)}
    claimed: list[list[str]] = [[], [], []]
    start = threading.Barrier(len(claimed))

    def drain(mine: list[str]) -> None:
        start.wait()
        while (job := store.claim(f"w{id(mine)}", 30)) is not None:
            mine.append(job.id)

    threads = [threading.Thread(target=drain, args=(mine,)) for mine in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    everything = [job_id for mine in claimed for job_id in mine]
    assert len(everything) == len(set(everything)) == len(ids)
    assert set(everything) == ids


def test_two_processes_claiming_at_once_never_take_the_same_job(
    store: JobStore, database_url: str, tmp_path: Path
) -> None:
    ids = {store.enqueue(new_job(str(i))).id for i in range(60)}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    names = ["claimer-a", "claimer-b"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, database_url, name, str(tmp_path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / name).exists() for name in names) and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()

    claimed = [proc.communicate(timeout=30)[0].split() for proc in procs]

    assert all(proc.returncode == 0 for proc in procs)
    everything = [job_id for mine in claimed for job_id in mine]
    assert len(everything) == len(set(everything)) == len(ids)
    assert set(everything) == ids


def test_a_stale_attempt_can_neither_heartbeat_nor_complete_nor_fail(store: JobStore) -> None:
    job = store.enqueue(new_job())
    first = store.claim("w1", 30)
    assert first is not None
    expire_lease(store, job.id, first.attempt)
    assert store.reap() == 1
    second = store.claim("w2", 30)
    assert second is not None and second.attempt == 2

    assert not store.heartbeat(job.id, first.attempt, 30)
    assert not store.complete(job.id, first.attempt, {"video": "stale"})
    assert not store.fail(job.id, first.attempt, "boom", "internal_error", 500)
    assert store.complete(job.id, second.attempt, {"video": "fresh"})
    assert not store.complete(job.id, second.attempt, {"video": "twice"})

    done = store.get(job.id)
    assert done is not None
    assert done.status is JobStatus.COMPLETED
    assert done.output == {"video": "fresh"}
    assert done.error is None
    assert done.inference_time is not None and done.inference_time >= 0


def test_an_output_that_is_not_strict_json_is_refused_on_every_database(store: JobStore) -> None:
    job = store.enqueue(new_job())
    store.claim("w", 30)

    with pytest.raises((ValueError, StatementError), match="JSON compliant"):
        store.complete(job.id, 1, {"score": float("nan")})
    assert store.get(job.id).status is JobStatus.IN_PROGRESS  # type: ignore[union-attr]


def test_complete_of_a_job_that_was_never_claimed_is_refused(store: JobStore) -> None:
    job = store.enqueue(new_job())

    assert not store.complete(job.id, 0, {"video": "x"})
    assert store.get(job.id).status is JobStatus.IN_QUEUE  # type: ignore[union-attr]


def test_reaper_requeues_an_expired_lease_then_fails_the_job_after_max_attempts(store: JobStore) -> None:
    job = store.enqueue(new_job())
    for attempt in (1, 2):
        claimed = store.claim("w", 30)
        assert claimed is not None and claimed.attempt == attempt
        assert store.reap() == 0  # a live lease is left alone
        expire_lease(store, job.id, attempt)
        assert store.reap() == 1
        requeued = store.get(job.id)
        assert requeued is not None
        assert requeued.status is JobStatus.IN_QUEUE
        assert requeued.worker_id is None
        assert store.queue_position(job.id) == 0

    store.claim("w", 30)
    expire_lease(store, job.id, 3)
    assert store.reap() == 1

    lost = store.get(job.id)
    assert lost is not None
    assert lost.status is JobStatus.COMPLETED
    assert lost.error == "the worker died 3 times while rendering this request"
    assert (lost.error_type, lost.error_status) == ("worker_lost", 500)
    messages = [entry.message for entry in store.logs(job.id)]
    assert sum("back in the queue" in m for m in messages) == 2
    assert "worker died 3 times" in messages[-1]


def test_a_job_not_started_before_its_deadline_ends_as_request_timeout(store: JobStore) -> None:
    late = store.enqueue(new_job(start_timeout_seconds=0.01))
    patient = store.enqueue(new_job(start_timeout_seconds=60))
    time.sleep(0.05)

    claimed = store.claim("w", 30)

    assert claimed is not None and claimed.id == patient.id
    timed_out = store.get(late.id)
    assert timed_out is not None
    assert timed_out.status is JobStatus.COMPLETED
    assert (timed_out.error_type, timed_out.error_status) == ("request_timeout", 504)
    assert timed_out.attempt == 0


def test_the_reaper_also_ends_jobs_past_their_start_deadline(store: JobStore) -> None:
    job = store.enqueue(new_job(start_timeout_seconds=0.01))
    time.sleep(0.05)

    assert store.reap() == 1
    assert store.get(job.id).error_type == "request_timeout"  # type: ignore[union-attr]


def test_a_requeued_job_is_not_timed_out_by_its_start_deadline(store: JobStore) -> None:
    job = store.enqueue(new_job(start_timeout_seconds=0.2))
    store.claim("w", 30)
    expire_lease(store, job.id, 1)
    time.sleep(0.25)
    store.reap()

    again = store.claim("w", 30)

    assert again is not None and again.id == job.id and again.attempt == 2


def test_cancel_of_a_queued_job_completes_it_at_once_as_cancelled(store: JobStore) -> None:
    job = store.enqueue(new_job())

    assert store.cancel(job.id) is CancelOutcome.CANCELLATION_REQUESTED

    cancelled = store.get(job.id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.COMPLETED
    assert cancelled.error == "Request cancelled by the user"
    assert (cancelled.error_type, cancelled.error_status) == ("request_cancelled", 400)
    assert store.claim("w", 30) is None
    assert store.cancel(job.id) is CancelOutcome.ALREADY_COMPLETED


def test_cancel_of_a_running_job_flags_its_attempt_for_the_worker(store: JobStore) -> None:
    job = store.enqueue(new_job())
    claimed = store.claim("w", 30)
    assert claimed is not None
    assert not store.cancel_requested(job.id, claimed.attempt)

    assert store.cancel(job.id) is CancelOutcome.CANCELLATION_REQUESTED

    assert store.cancel_requested(job.id, claimed.attempt)
    assert store.get(job.id).status is JobStatus.IN_PROGRESS  # type: ignore[union-attr]
    assert store.fail(job.id, claimed.attempt, "Request cancelled by the user", "request_cancelled", 400)


def test_a_cancelled_running_job_whose_worker_died_ends_cancelled_not_requeued(store: JobStore) -> None:
    job = store.enqueue(new_job())
    store.claim("w", 30)
    store.cancel(job.id)
    expire_lease(store, job.id, 1)

    assert store.reap() == 1
    assert store.get(job.id).error_type == "request_cancelled"  # type: ignore[union-attr]


def test_cancel_of_an_unknown_or_finished_job(store: JobStore) -> None:
    job = store.enqueue(new_job())
    store.claim("w", 30)
    store.complete(job.id, 1, {"video": "x"})

    assert store.cancel(job.id) is CancelOutcome.ALREADY_COMPLETED
    assert store.cancel(str(uuid.uuid4())) is CancelOutcome.NOT_FOUND


def test_release_puts_a_running_job_back_at_the_front_of_the_queue(store: JobStore) -> None:
    job = store.enqueue(new_job())
    later = store.enqueue(new_job())
    store.claim("w", 30)

    assert store.release(job.id, 1)
    assert not store.release(job.id, 1)
    assert store.queue_position(job.id) == 0
    assert store.queue_position(later.id) == 1


def test_forget_payloads_drops_input_and_output_of_a_finished_job_but_keeps_its_status(
    store: JobStore,
) -> None:
    job = store.enqueue(new_job(store_io=False))
    assert not store.forget_payloads(job.id)  # a queued job still needs its input
    store.claim("w", 30)
    store.fail(job.id, 1, "boom", "internal_error", 500)

    assert store.forget_payloads(job.id)

    forgotten = store.get(job.id)
    assert forgotten is not None
    assert (forgotten.input, forgotten.output) == (None, None)
    assert (forgotten.status, forgotten.error, forgotten.error_type) == (
        JobStatus.COMPLETED,
        "boom",
        "internal_error",
    )
    assert forgotten.store_io is False


def test_logs_are_ordered_per_job_and_readable_incrementally(store: JobStore) -> None:
    job = store.enqueue(new_job())
    other = store.enqueue(new_job())
    store.append_log(job.id, "one")
    store.append_log(other.id, "elsewhere")
    store.append_log(job.id, "two", "WARN")

    entries = store.logs(job.id)
    assert [(e.message, e.level) for e in entries] == [("one", "INFO"), ("two", "WARN")]
    assert entries[0].timestamp.tzinfo is timezone.utc
    assert entries[0].to_fal()["source"] == "USER"

    store.append_log(job.id, "three")
    assert [e.message for e in store.logs(job.id, after=entries[-1].seq)] == ["three"]


def test_finishing_a_job_with_a_webhook_queues_exactly_one_delivery(store: JobStore) -> None:
    with_hook = store.enqueue(new_job(webhook_url="http://127.0.0.1:9/hook"))
    without = store.enqueue(new_job())
    store.claim("w", 30)
    store.claim("w", 30)
    store.complete(with_hook.id, 1, {"video": {"url": "u"}})
    store.complete(without.id, 1, {"video": {"url": "u"}})

    delivery = store.claim_webhook("d", 30)

    assert delivery is not None
    assert (delivery.job.id, delivery.url, delivery.attempt) == (with_hook.id, "http://127.0.0.1:9/hook", 1)
    assert delivery.payload == {"video": {"url": "u"}}
    assert store.claim_webhook("d", 30) is None


def test_a_cancelled_queued_job_with_a_webhook_reports_it(store: JobStore) -> None:
    job = store.enqueue(new_job(webhook_url="http://127.0.0.1:9/hook"))
    store.cancel(job.id)

    delivery = store.claim_webhook("d", 30)

    assert delivery is not None and delivery.job.error_type == "request_cancelled"


def test_a_webhook_whose_sender_died_mid_delivery_is_claimable_again_after_its_lease(store: JobStore) -> None:
    job = store.enqueue(new_job(webhook_url="http://127.0.0.1:9/hook"))
    store.claim("w", 30)
    store.complete(job.id, 1, {"video": "x"})
    first = store.claim_webhook("dead", 0.05)
    assert first is not None
    assert store.claim_webhook("alive", 30) is None

    time.sleep(0.1)
    second = store.claim_webhook("alive", 30)

    assert second is not None and second.id == first.id and second.attempt == 2
    store.webhook_delivered(second.id)
    assert store.webhook_state(second.id) == "DELIVERED"
    assert store.claim_webhook("alive", 30) is None


def test_a_retried_webhook_waits_until_its_next_attempt_time(store: JobStore) -> None:
    job = store.enqueue(new_job(webhook_url="http://127.0.0.1:9/hook"))
    store.claim("w", 30)
    store.complete(job.id, 1, {"video": "x"})
    delivery = store.claim_webhook("d", 30)
    assert delivery is not None

    store.webhook_retry(delivery.id, "HTTP 500", utcnow() + timedelta(seconds=0.1))
    assert store.claim_webhook("d", 30) is None
    time.sleep(0.15)
    again = store.claim_webhook("d", 30)
    assert again is not None and again.attempt == 2

    store.webhook_give_up(again.id, "HTTP 500")
    assert store.webhook_state(again.id) == "FAILED"


def test_expired_files_lists_only_files_past_their_expiry(store: JobStore) -> None:
    job = store.enqueue(new_job())
    now = utcnow()
    store.record_file(job.id, 1, "a/old.mp4", now - timedelta(seconds=1))
    store.record_file(job.id, 1, "b/new.mp4", now + timedelta(hours=1))
    store.record_file(job.id, 1, "c/kept.mp4", None)

    assert store.expired_files(now) == ["a/old.mp4"]
    store.forget_file("a/old.mp4")
    assert store.expired_files(now + timedelta(hours=2)) == ["b/new.mp4"]


def test_the_sqlite_database_is_in_wal_mode_and_shared_between_stores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'framecast.db'}"
    api, worker = JobStore.open(url), JobStore.open(url)
    try:
        job = api.enqueue(new_job())
        assert worker.claim("w", 30).id == job.id  # type: ignore[union-attr]
        with sqlite3.connect(tmp_path / "nested" / "dir" / "framecast.db") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        api.close()
        worker.close()


def test_an_in_memory_database_is_refused_because_processes_could_not_share_it() -> None:
    with pytest.raises(ConfigError, match="share"):
        JobStore.open("sqlite://")


def test_an_idle_worker_waiting_for_work_wakes_when_a_job_becomes_claimable(
    store: JobStore, database_url: str
) -> None:
    waiter = JobStore.open(database_url)
    stop = threading.Event()
    try:
        if not database_url.startswith("postgresql"):
            started = time.monotonic()
            waiter.wait_for_work(0.05, stop)  # SQLite: workers poll
            assert time.monotonic() - started >= 0.05
            stop.set()
            started = time.monotonic()
            waiter.wait_for_work(30, stop)  # a stopping worker does not wait
            assert time.monotonic() - started < 5
            return
        waiter.wait_for_work(0.01, stop)  # opens the LISTEN connection, as a worker's first idle wait does
        for make_claimable in (
            lambda: store.enqueue(new_job()),
            lambda: store.release(store.claim("w", 30).id, 1),  # type: ignore[union-attr]
        ):
            woke = threading.Event()
            thread = threading.Thread(target=lambda woke=woke: (waiter.wait_for_work(30, stop), woke.set()))
            thread.start()
            time.sleep(0.2)
            make_claimable()
            assert woke.wait(10)  # woken by the NOTIFY at commit, long before the 30 s timeout
            thread.join()
    finally:
        waiter.close()


def test_retention_finds_and_deletes_only_finished_jobs_older_than_the_cutoff(store: JobStore) -> None:
    old, recent = store.enqueue(new_job("old")), store.enqueue(new_job("recent"))
    queued = store.enqueue(new_job("still queued"))
    for job in (old, recent):
        claimed = store.claim("w", 30)
        assert claimed is not None and claimed.id == job.id
        store.append_log(claimed.id, "rendered")
        store.record_file(claimed.id, claimed.attempt, f"{claimed.id}/video.mp4", None)
        store.complete(claimed.id, claimed.attempt, {"video": {"url": "u"}})
    waiting = store.enqueue(new_job("waiting"))
    cutoff = utcnow()
    time.sleep(0.01)
    claimed = store.claim("w", 30)
    assert claimed is not None and claimed.id == queued.id
    store.complete(queued.id, claimed.attempt, {"video": {"url": "u"}})  # finished after the cutoff

    ids = store.finished_before(cutoff)
    assert ids == [old.id, recent.id]  # oldest first; the waiting and later-finished jobs are not there
    assert store.finished_before(cutoff, limit=1) == [old.id]
    assert sorted(store.file_keys(ids)) == sorted([f"{old.id}/video.mp4", f"{recent.id}/video.mp4"])

    store.append_log(waiting.id, "still waiting")
    assert store.delete_jobs([old.id, waiting.id]) == 1  # a job that is not finished is never deleted
    assert [entry.message for entry in store.logs(waiting.id)] == ["still waiting"]  # nor are its logs
    assert store.get(old.id) is None and store.logs(old.id) == []
    assert store.file_keys([old.id]) == []
    assert store.get(waiting.id) is not None and store.get(recent.id) is not None
    assert store.delete_jobs([]) == 0


# -- fairness, quotas, crashes and X-Fal-No-Retry ----------------------------------------------------------


def test_another_keys_first_job_is_claimed_next_behind_a_backlog_of_2000(
    store: JobStore, database_url: str
) -> None:
    # 2000 on SQLite; on PostgreSQL, where each submit is a network round trip, 300 show the same rule in a tenth
    # of the time (the claim order does not depend on the backlog's length).
    size = 2000 if database_url.startswith("sqlite") else 300
    backlog = [store.enqueue(new_job(f"a{i}", owner="alice")) for i in range(size)]
    first = store.claim("w", 30)
    assert first is not None and first.id == backlog[0].id
    bobs = store.enqueue(new_job("bob's first", owner="bob"))

    claimed = [store.claim("w", 30) for _ in range(2)]

    # Alice's job of the current turn (earlier arrival) may go first; Bob's is next, not 1999 jobs later.
    assert bobs.id in [job.id for job in claimed if job is not None]
    assert store.queue_position(backlog[-1].id) == size - 3


def test_keys_take_turns_and_a_requeued_job_goes_back_to_the_front(store: JobStore) -> None:
    a = [store.enqueue(new_job(f"a{i}", owner="alice")) for i in range(3)]
    b = [store.enqueue(new_job(f"b{i}", owner="bob")) for i in range(2)]
    low = store.enqueue(new_job("low", owner="carol", priority=Priority.low))

    order = []
    while (job := store.claim("w", 30)) is not None:
        order.append(job.id)
        if job.id == b[0].id:  # its worker stops: handed back, it is next again
            assert store.release(job.id, job.attempt)
            assert store.claim("w", 30).id == b[0].id  # type: ignore[union-attr]

    assert order == [a[0].id, b[0].id, a[1].id, b[1].id, a[2].id, low.id]


def test_a_key_at_its_running_limit_waits_while_other_keys_run(database_url: str) -> None:
    store = JobStore.open(database_url, limits=QueueLimits(max_running_per_key=1))
    try:
        a1, a2 = store.enqueue(new_job(owner="alice")), store.enqueue(new_job(owner="alice"))
        b1 = store.enqueue(new_job(owner="bob"))

        running = [store.claim("w", 30), store.claim("w", 30)]
        assert [j.id for j in running if j] == [a1.id, b1.id]
        assert store.claim("w", 30) is None  # a2 waits: alice already renders one
        store.complete(a1.id, 1, {"video": "x"})
        assert store.claim("w", 30).id == a2.id  # type: ignore[union-attr]
    finally:
        store.close()


def test_queue_limits_refuse_a_submit_per_key_and_overall(database_url: str) -> None:
    store = JobStore.open(database_url, limits=QueueLimits(max_queued_per_key=2, max_queued=3))
    try:
        store.enqueue(new_job(owner="alice"))
        store.enqueue(new_job(owner="alice"))
        with pytest.raises(QueueFull, match="already has 2 requests waiting") as per_key:
            store.enqueue(new_job(owner="alice"))
        store.enqueue(new_job(owner="bob"))  # another key still has room
        with pytest.raises(QueueFull, match="queue is full"):
            store.enqueue(new_job(owner="carol"))
        store.claim("w", 30)  # a started job no longer counts against the queue
        store.enqueue(new_job(owner="alice"))
    finally:
        store.close()
    assert per_key.value.retry_after > 0


def test_a_graceful_hand_back_uses_no_attempt_and_a_crash_does(store: JobStore) -> None:
    job = store.enqueue(new_job())
    for attempt in range(1, 6):  # five restarts of the worker: none counts against max_attempts (3)
        claimed = store.claim("w", 30)
        assert claimed is not None and claimed.attempt == attempt
        assert store.release(job.id, attempt)
    assert store.get(job.id).crashes == 0  # type: ignore[union-attr]

    claimed = store.claim("w", 30)
    expire_lease(store, job.id, 6)
    assert store.reap() == 1

    again = store.get(job.id)
    assert again is not None and again.status is JobStatus.IN_QUEUE
    assert (again.attempt, again.crashes) == (6, 1)


def test_a_no_retry_job_whose_worker_died_fails_instead_of_running_again(store: JobStore) -> None:
    job = store.enqueue(new_job(no_retry=True))
    claimed = store.claim("w", 30)
    assert claimed is not None and claimed.no_retry
    expire_lease(store, job.id, claimed.attempt)

    assert store.reap() == 1

    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.COMPLETED
    assert failed.error == NO_RETRY_MESSAGE
    assert (failed.error_type, failed.error_status) == ("worker_lost", 500)
    assert store.claim("w", 30) is None


def test_a_file_is_an_orphan_once_its_attempt_ended_without_completing(store: JobStore) -> None:
    crashed, completed = store.enqueue(new_job("crashed")), store.enqueue(new_job("completed"))
    first = store.claim("w", 30)
    store.record_file(crashed.id, 1, "k/crashed-a1.mp4", None)
    second = store.claim("w", 30)
    store.record_file(completed.id, 1, "k/completed-a1.mp4", None)
    assert first and second and store.orphan_files() == []  # both attempts still running

    store.complete(completed.id, 1, {"video": "x"})
    expire_lease(store, crashed.id, 1)
    store.reap()

    assert store.orphan_files() == ["k/crashed-a1.mp4"]
