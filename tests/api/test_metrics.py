"""``/metrics`` (api/metrics.py): the store's queue and outcomes, and the workers' reports, in Prometheus text."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from framecast.jobs.store import JobStore
from tests.api.conftest import SMALL, SUBMIT, Live, requests_path, submit


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    """The sum over every series of ``name`` whose labels include ``labels`` (e.g. over workers)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def test_metrics_report_the_queue_by_priority_and_the_waiting_keys(
    client: TestClient, store: JobStore
) -> None:
    submit(client)
    submit(client, headers={"X-Fal-Queue-Priority": "low"})

    found = samples(client.get("/metrics").text)

    assert value(found, "framecast_queue_depth", priority="normal") == 1
    assert value(found, "framecast_queue_depth", priority="low") == 1
    assert value(found, "framecast_queue_keys") == 1
    assert value(found, "framecast_database_up") == 1
    assert value(found, "framecast_sse_streams") == 0


def test_metrics_carry_the_workers_reports_of_a_rendered_job(live: Live) -> None:
    job = live.client.post(SUBMIT, json=SMALL).json()
    deadline = time.monotonic() + 30
    while live.client.get(requests_path(job["request_id"], "/status")).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    found: dict = {}
    while value(found, "framecast_render_seconds_count") < 1:  # reports are written every heartbeat
        assert time.monotonic() < deadline, "no worker report arrived"
        time.sleep(0.1)
        found = samples(live.client.get("/metrics").text)

    assert value(found, "framecast_render_seconds_count", preset="instant", resolution="360p") == 1
    assert value(found, "framecast_worker_jobs_total", outcome="completed") == 1
    assert value(found, "framecast_queue_wait_seconds_count") == 1
    assert value(found, "framecast_step_seconds_count", preset="instant") == 3  # 4 steps: 3 gaps between them
    assert value(found, "framecast_jobs_finished", outcome="ok") == 1
    assert value(found, "framecast_worker_info", engine="instant") == 1
    assert value(found, "framecast_jobs_running") == 0
