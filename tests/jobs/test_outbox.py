"""The webhook outbox's claim: oldest due first, passing over the hosts and owners a sender has busy."""

from __future__ import annotations

import pytest

from framecast.jobs import JobStore
from framecast.jobs.outbox import CANDIDATES, target_host
from tests.jobs.test_store import new_job


def queued_webhook(store: JobStore, url: str, owner: str = "key1") -> str:
    job = store.enqueue(new_job(owner=owner, webhook_url=url))
    store.cancel(job.id)  # finishing a job queues its webhook
    return job.id


@pytest.mark.parametrize(
    "busy_url",
    [
        "http://slow.example/hook",
        "https://SLOW.example:8443/a?b",
        "http://slow.example?x=1",
        "http://slow.example",
        "http://slow.example./hook",
    ],
)
def test_a_claim_passes_over_a_busy_host_however_its_url_spells_it(store: JobStore, busy_url: str) -> None:
    queued_webhook(store, busy_url)
    other = queued_webhook(store, "http://slow.example.org/hook")

    delivery = store.claim_webhook("d", 30, busy_hosts={"slow.example"})

    assert delivery is not None and delivery.job.id == other
    assert store.claim_webhook("d", 30, busy_hosts={"slow.example"}) is None
    assert store.claim_webhook("d", 30) is not None  # the busy host's row, once the host is not busy


def test_a_busy_host_with_more_due_rows_than_a_claim_reads_does_not_hide_another_hosts_row(
    store: JobStore,
) -> None:
    for _ in range(CANDIDATES + 5):
        queued_webhook(store, "http://[2001:db8::5]:9000/hook")
    other = queued_webhook(store, "http://fast.example/hook")

    delivery = store.claim_webhook("d", 30, busy_hosts={"2001:db8::5"})

    assert delivery is not None and delivery.job.id == other


def test_a_claim_passes_over_the_jobs_of_a_busy_owner(store: JobStore) -> None:
    queued_webhook(store, "http://a.example/hook", owner="mallory")
    bobs = queued_webhook(store, "http://a.example/hook", owner="bob")

    delivery = store.claim_webhook("d", 30, busy_owners={"mallory"})

    assert delivery is not None and delivery.job.id == bobs


def test_the_host_of_a_url_that_does_not_parse_is_empty() -> None:
    assert target_host("http://[::1/hook") == ""
    assert target_host("HTTP://Hooks.Example.:80/x") == "hooks.example"
