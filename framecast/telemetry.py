"""A worker's own measurements, reported through the job store so the API can export them at ``/metrics``.

Workers are separate processes, often on other machines, so each keeps its counters and histograms in its own
prometheus-client registry and writes a JSON snapshot of them to its row of the ``workers`` table every few
seconds (``WorkerStats.report``); the API turns every fresh row back into metric families with a ``worker`` label
(``framecast/api/metrics.py``). No shared files, no scraping of workers, and it works the same on one machine and
on many. A worker killed outright loses at most the last few seconds of its counts, and Prometheus sees its
series end.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

# Seconds. Renders run from a second (tiny models, turbo presets) to many minutes (1080p on a small GPU).
RENDER_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 2400)
STEP_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32)
WAIT_BUCKETS = (0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200)


class WorkerStats:
    """One worker process's metrics; thread-safe (prometheus-client's metrics are)."""

    def __init__(self, engine_name: str) -> None:
        self.engine_name = engine_name
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.started = time.time()
        self.job_id: str | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.render_seconds = Histogram(
            "framecast_render_seconds",
            "Time from claim to stored result, by preset and output resolution",
            ["preset", "resolution"],
            buckets=RENDER_BUCKETS,
            registry=self.registry,
        )
        self.step_seconds = Histogram(
            "framecast_step_seconds",
            "Time of one denoising step, by preset",
            ["preset"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait_seconds = Histogram(
            "framecast_queue_wait_seconds",
            "Time a request waited in the queue before a worker claimed it",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.jobs = Counter(
            "framecast_worker_jobs",
            "Attempts this worker ended, by outcome (completed, failed, released, cancelled, lease_lost) and "
            "error type",
            ["outcome", "error_type"],
            registry=self.registry,
        )

    def ended(self, outcome: str, error_type: str = "") -> None:
        self.jobs.labels(outcome=outcome, error_type=error_type).inc()

    def report(self) -> dict[str, Any]:
        """A JSON-ready snapshot: identity, the current job, GPU memory, and every metric's samples."""
        families = []
        for metric in self.registry.collect():
            samples = [[s.name, s.labels, s.value] for s in metric.samples if not s.name.endswith("_created")]
            families.append([metric.name, metric.type, metric.documentation, samples])
        return {
            "host": self.host,
            "pid": self.pid,
            "engine": self.engine_name,
            "started": self.started,
            "job": self.job_id,
            "gpu": gpu_memory(),
            "metrics": families,
        }


class StepClock:
    """Times the gaps between a render's progress reports: each gap is one denoising step."""

    def __init__(self, stats: WorkerStats) -> None:
        self._stats = stats
        self._last: float | None = None

    def tick(self, step: int) -> None:
        now = time.monotonic()
        # The first report follows text encoding and set-up, not a step: only gaps between reports count.
        if self._last is not None and step > 1:
            self._stats.step_seconds.labels(preset=self._stats.engine_name).observe(now - self._last)
        self._last = now


def gpu_memory() -> dict[str, int] | None:
    """CUDA memory of this process, when its engine has loaded torch and touched the GPU; never imports torch."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    device = torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(device)
    return {
        "allocated": int(torch.cuda.memory_allocated(device)),
        "reserved": int(torch.cuda.memory_reserved(device)),
        "peak": int(torch.cuda.max_memory_allocated(device)),
        "device_free": int(free),
        "device_total": int(total),
    }
