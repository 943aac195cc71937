"""API load benchmark: N concurrent clients submit and poll status every 100 ms, as fal's Python client does.

The server is a real `framecast serve --workers 0` (API process, SQLite in WAL mode) plus one worker process whose
engine renders instantly (`InstantEngine`, the dedicated fake at the hardware boundary), so the numbers measure the
API and the job store, not a model. Prints a markdown table: submit throughput and status latency p50/p99 per N.

    .venv/bin/python bench/api_load.py [--clients 10 100 500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.live_server import LiveServer  # noqa: E402

SUBMIT = "/queue/fal-ai/pixverse/v5.5/text-to-video"
BODY = {"prompt": "load test", "resolution": "360p"}
WORKER = (
    "from framecast.config import Settings\n"
    "from framecast.engine.instant import InstantEngine\n"
    "from framecast.worker import run_worker\n"
    "run_worker(Settings.from_env(), engine_factory=lambda settings: InstantEngine())\n"
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def one_client(
    http: httpx.AsyncClient, stop_at: float, submits: list[float], polls: list[float]
) -> None:
    while time.monotonic() < stop_at:
        started = time.monotonic()
        response = await http.post(SUBMIT, json=BODY)
        submits.append(time.monotonic() - started)
        status_url = response.json()["status_url"]
        while time.monotonic() < stop_at:
            started = time.monotonic()
            status = await http.get(status_url)
            polls.append(time.monotonic() - started)
            if status.json()["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.1)


async def run_level(base_url: str, clients: int, seconds: float) -> dict[str, float]:
    submits: list[float] = []
    polls: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as http:
        stop_at = time.monotonic() + seconds
        began = time.monotonic()
        await asyncio.gather(*(one_client(http, stop_at, submits, polls) for _ in range(clients)))
        elapsed = time.monotonic() - began
    return {
        "clients": clients,
        "submits_per_s": len(submits) / elapsed,
        "submit_p50_ms": 1000 * statistics.median(submits),
        "status_per_s": len(polls) / elapsed,
        "status_p50_ms": 1000 * statistics.median(polls),
        "status_p99_ms": 1000 * percentile(polls, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = LiveServer(data, args=("--workers", "0"), env={"FRAMECAST_LOG_LEVEL": "warning"})
        worker_env = {**os.environ, "FRAMECAST_DATA_DIR": str(data), "FRAMECAST_POLL_SECONDS": "0.02"}
        worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=REPO, env=worker_env)
        try:
            server.wait_ready()
            rows = [asyncio.run(run_level(server.url, n, args.seconds)) for n in args.clients]
        finally:
            worker.terminate()
            worker.wait(timeout=15)
            server.close()

    print(
        f"\nAPI load on SQLite, {os.cpu_count()} cores, {args.seconds:.0f} s per level, status polled every 100 ms"
    )
    print("| clients | submits/s | submit p50 ms | status req/s | status p50 ms | status p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['clients']} | {row['submits_per_s']:.0f} | {row['submit_p50_ms']:.1f} | "
            f"{row['status_per_s']:.0f} | {row['status_p50_ms']:.1f} | {row['status_p99_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()
