"""``GET /metrics``: Prometheus text exposition, built at each scrape from three sources.

- The job store, read at scrape time (so any API process reports the same): queue depth by priority, how many
  keys are waiting, running jobs, finished jobs by error type, the webhook outbox by state.
- The workers' own reports (``framecast/telemetry.py``), one row each in the ``workers`` table, re-labelled with
  ``worker``: render and step times, queue wait, attempts by outcome, GPU memory.
- This process: open SSE streams.

The names are listed for dashboards in docs/operations.md. A scrape while the database is down still answers,
with ``framecast_database_up 0``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from framecast.config import Settings
from framecast.jobs.database import utcnow
from framecast.jobs.models import Priority
from framecast.jobs.retry import describe, is_transient
from framecast.jobs.store import JobStore

logger = logging.getLogger(__name__)

WORKER_FRESH_SECONDS = 60.0  # a worker unseen for longer (and at least 12 reports) is no longer exported


class ApiMetrics:
    """The registry ``/metrics`` renders; ``open_streams`` tells this process's open SSE streams."""

    def __init__(self, store: JobStore, settings: Settings, open_streams: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        fresh = max(WORKER_FRESH_SECONDS, 12 * settings.heartbeat_seconds)
        self.registry.register(StoreCollector(store, fresh, open_streams))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector(Collector):
    def __init__(self, store: JobStore, fresh_seconds: float, streams: Callable[[], int]) -> None:
        self.store = store
        self.fresh_seconds = fresh_seconds
        self.streams = streams

    def collect(self) -> Iterator[Metric]:
        sse = GaugeMetricFamily("framecast_sse_streams", "Status streams open on this API process")
        sse.add_metric([], self.streams())
        yield sse
        up = GaugeMetricFamily("framecast_database_up", "1 when this scrape could read the job database")
        try:
            families = list(self._from_store()) + list(self._from_workers())
        except Exception as exc:
            if not is_transient(exc):
                raise
            logger.warning("metrics: the job database is unreachable (%s)", describe(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_store(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "framecast_queue_depth", "Requests waiting, by priority", labels=["priority"]
        )
        queued = self.store.queue_depth()
        for priority in Priority:
            depth.add_metric([priority.name], queued.get(int(priority), 0))
        yield depth
        keys = GaugeMetricFamily("framecast_queue_keys", "API keys with at least one request waiting")
        keys.add_metric([], self.store.queued_keys())
        yield keys
        running = GaugeMetricFamily("framecast_jobs_running", "Requests being rendered")
        running.add_metric([], self.store.running())
        yield running
        # Counts of rows, so they fall when FRAMECAST_RETENTION_DAYS deletes old requests: gauges, not counters.
        finished = GaugeMetricFamily(
            "framecast_jobs_finished",
            "Finished requests kept in the store, by outcome and error type",
            labels=["outcome", "error_type"],
        )
        for error_type, count in sorted(self.store.finished_by_error_type().items()):
            finished.add_metric(["error" if error_type else "ok", error_type], count)
        yield finished
        hooks = GaugeMetricFamily(
            "framecast_webhooks",
            "Webhook outbox rows by state (PENDING, DELIVERED, FAILED)",
            labels=["state"],
        )
        tries = GaugeMetricFamily(
            "framecast_webhook_attempts",
            "Delivery tries made for the outbox rows, by state",
            labels=["state"],
        )
        by_state = self.store.webhooks_by_state()
        for state in ("PENDING", "DELIVERED", "FAILED"):
            rows, attempts = by_state.get(state, (0, 0))
            hooks.add_metric([state], rows)
            tries.add_metric([state], attempts)
        yield hooks
        yield tries

    def _from_workers(self) -> Iterator[Metric]:
        now = utcnow()
        reports = self.store.worker_reports(now - timedelta(seconds=self.fresh_seconds))
        info = GaugeMetricFamily(
            "framecast_worker_info", "One per live worker", labels=["worker", "host", "engine"]
        )
        busy = GaugeMetricFamily("framecast_worker_busy", "1 while the worker renders", labels=["worker"])
        age = GaugeMetricFamily(
            "framecast_worker_report_age_seconds", "Seconds since the worker's last report", labels=["worker"]
        )
        gpu = GaugeMetricFamily(
            "framecast_worker_gpu_memory_bytes",
            "CUDA memory of the worker process (allocated, reserved, peak) and of its device (device_free, "
            "device_total)",
            labels=["worker", "kind"],
        )
        merged: dict[str, Metric] = {}
        for worker_id, seen_at, stats in reports:
            info.add_metric([worker_id, str(stats.get("host", "")), str(stats.get("engine", ""))], 1)
            busy.add_metric([worker_id], 1 if stats.get("job") else 0)
            age.add_metric([worker_id], (now - seen_at).total_seconds())
            for kind, value in (stats.get("gpu") or {}).items():
                gpu.add_metric([worker_id, kind], value)
            _merge(merged, worker_id, stats.get("metrics") or [])
        yield from (info, busy, age, gpu)
        yield from merged.values()


def _merge(merged: dict[str, Metric], worker_id: str, families: list[Any]) -> None:
    """Add one worker's families (``telemetry.WorkerStats.report``) to ``merged``, each sample labelled with it."""
    for name, kind, documentation, samples in families:
        family = merged.setdefault(name, Metric(name, documentation, kind))
        for sample_name, labels, value in samples:
            family.add_sample(sample_name, {**labels, "worker": worker_id}, value)


def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def router() -> APIRouter:
    api = APIRouter(tags=["service"])
    api.add_api_route("/metrics", metrics, methods=["GET"], summary="Prometheus metrics")
    return api
