"""Queue positions from a snapshot (positions.py): exact with max_age 0, otherwise at most about max_age old."""

from __future__ import annotations

import time

from framecast.jobs import JobStore, NewJob, Priority
from framecast.jobs.positions import QueuePositions


def new_job(owner: str = "", **kwargs: object) -> NewJob:
    return NewJob(endpoint="e", input={"prompt": "p"}, owner=owner, **kwargs)  # type: ignore[arg-type]


def test_positions_follow_the_claim_order_of_priorities_and_turns(store: JobStore) -> None:
    positions = QueuePositions(store, max_age=0)
    a1, a2 = store.enqueue(new_job("alice")), store.enqueue(new_job("alice"))
    b1 = store.enqueue(new_job("bob"))
    low = store.enqueue(new_job("carol", priority=Priority.low))

    assert [positions.position(store.get(j.id)) for j in (a1, b1, a2, low)] == [0, 1, 2, 3]  # type: ignore[arg-type]


def test_a_snapshot_is_reused_until_it_is_older_than_max_age_then_refreshed(store: JobStore) -> None:
    positions = QueuePositions(store, max_age=0.3)
    first, second, third = (store.enqueue(new_job()) for _ in range(3))
    assert positions.position(third) == 2

    store.claim("w", 30)
    store.claim("w", 30)
    assert positions.position(third) == 2  # stale, by design: answered from the snapshot

    deadline = time.monotonic() + 5
    while positions.position(third) != 0:  # past max_age, a background read brings it up to date
        assert time.monotonic() < deadline, "the snapshot was never refreshed"
        time.sleep(0.02)
    assert positions.age < 5
