"""API load benchmark: N concurrent clients submit and poll status every 100 ms, as fal's Python client does.

The server is a real `framecast serve --workers 0` (API process, SQLite in WAL mode) plus one worker process whose
engine renders instantly (`InstantEngine`, the dedicated fake at the hardware boundary), so the numbers measure the
API and the job store, not a model. Prints a markdown table: submit throughput and status latency p50/p99 per N.

    .venv/bin/python bench/api_load.py [--clients 10 100 500] [--seconds 10]

With ``--depths``, a queue-depth sweep instead (issue 11): the queue is filled to each depth (no worker runs), and
`wrk` (a C load generator: `apt-get install wrk`) saturates ``/health`` and then the status of the job at the back
of the queue, 100 connections, reporting requests/s and p99 of each, and their ratio. ``--exact`` also measures
the status with positions counted on every poll (``FRAMECAST_QUEUE_POSITION_SECONDS=0``, the cost before issue 11).

    .venv/bin/python bench/api_load.py --depths 0 10000 100000 [--exact]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

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


class RawClient:
    """One keep-alive HTTP/1.1 connection spoken by hand.

    httpx costs about 1 ms of client CPU per request: at 100 clients polling every 100 ms the load generator, not
    the server, saturated a core. This client costs tens of microseconds, so the table measures the server.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def __aenter__(self) -> RawClient:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return int(status_line.split()[1]), json.loads(await self.reader.readexactly(length))


async def one_client(
    address: tuple[str, int], stop_at: float, submits: list[float], polls: list[float]
) -> None:
    body = json.dumps(BODY).encode()
    async with RawClient(*address) as http:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            _, queued = await http.request("POST", SUBMIT, body)
            submits.append(time.monotonic() - started)
            status_path = urlsplit(queued["status_url"]).path
            while time.monotonic() < stop_at:
                started = time.monotonic()
                _, status = await http.request("GET", status_path)
                polls.append(time.monotonic() - started)
                if status["status"] == "COMPLETED":
                    break
                await asyncio.sleep(0.1)


async def run_level(address: tuple[str, int], clients: int, seconds: float) -> dict[str, float]:
    submits: list[float] = []
    polls: list[float] = []
    stop_at = time.monotonic() + seconds
    began = time.monotonic()
    await asyncio.gather(*(one_client(address, stop_at, submits, polls) for _ in range(clients)))
    elapsed = time.monotonic() - began
    return {
        "clients": clients,
        "submits_per_s": len(submits) / elapsed,
        "submit_p50_ms": 1000 * statistics.median(submits),
        "status_per_s": len(polls) / elapsed,
        "status_p50_ms": 1000 * statistics.median(polls),
        "status_p99_ms": 1000 * percentile(polls, 0.99),
    }


def fill_queue(database_url: str, depth: int) -> None:
    """``depth`` queued jobs of one key, written in bulk (as enqueue would write them, turn after turn): submitting
    100k over HTTP would take minutes and measure nothing this sweep is about."""
    from sqlalchemy import insert

    from framecast.jobs import JobStore
    from framecast.jobs.database import utcnow
    from framecast.jobs.tables import jobs

    store = JobStore.open(database_url)
    now = utcnow()
    row = {
        "endpoint": "fal-ai/pixverse/v5.5/text-to-video",
        "owner": "",  # the key of the job the sweep polls, which so waits at the back of the line
        "status": "IN_QUEUE",
        "priority": 0,
        "input": BODY,
        "attempt": 0,
        "cancel_requested": False,
        "store_io": True,
        "base_url": "",
        "created_at": now,
        "crashes": 0,
        "no_retry": False,
    }
    try:
        for start in range(0, depth, 5000):
            batch = [
                {**row, "id": str(uuid.uuid4()), "turn": i} for i in range(start, min(depth, start + 5000))
            ]
            with store._write() as conn:
                conn.execute(insert(jobs), batch)
    finally:
        store.close()


def wrk(url: str, seconds: float, connections: int = 100) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of `wrk` saturating ``url``; one wrk thread, so the server keeps a core."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p50, p99 = (re.search(rf"\s{q}%\s+([\d.]+)(us|ms|s)", out).groups() for q in (50, 99))  # type: ignore[union-attr]
    return rate, float(p50[0]) * scale[p50[1]], float(p99[0]) * scale[p99[1]]


def depth_sweep(depths: list[int], seconds: float, exact: bool) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("the sweep needs wrk (a C load generator): apt-get install wrk")
    rows = []
    for depth in depths:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            fill_queue(f"sqlite:///{data / 'framecast.db'}", depth)
            row: dict[str, float] = {"depth": depth}
            arms = [("", {})] + ([("exact_", {"FRAMECAST_QUEUE_POSITION_SECONDS": "0"})] if exact else [])
            for prefix, extra in arms:
                env = {"FRAMECAST_LOG_LEVEL": "warning", "FRAMECAST_MAX_QUEUED": "0", **extra}
                env["FRAMECAST_MAX_QUEUED_PER_KEY"] = "0"  # the backlog is one key's
                with LiveServer(data, args=("--workers", "0"), env=env) as server:
                    server.wait_ready()
                    last = json.loads(
                        subprocess.run(
                            [
                                "curl",
                                "-s",
                                "-H",
                                "content-type: application/json",
                                "-d",
                                json.dumps(BODY),
                                f"{server.url}{SUBMIT}",
                            ],
                            capture_output=True,
                            check=True,
                        ).stdout
                    )
                    status_url = last["status_url"]
                    wrk(status_url, 2)  # warm-up: the first poll reads the snapshot
                    if not prefix:
                        row["health_rps"], _, row["health_p99"] = wrk(f"{server.url}/health", seconds)
                    rps, p50, p99 = wrk(status_url, seconds)
                    row[f"{prefix}status_rps"], row[f"{prefix}status_p50"], row[f"{prefix}status_p99"] = (
                        rps,
                        p50,
                        p99,
                    )
            rows.append(row)

    print(
        f"\nStatus of the last queued job vs /health, wrk -t1 -c100 {seconds:g} s each, {os.cpu_count()} cores"
    )
    head = "| queued | /health req/s | /health p99 ms | status req/s | status p50 ms | status p99 ms | status ÷ health"
    head += " |"
    head += " exact status req/s | exact p50 ms | exact p99 ms |" if exact else ""
    print(head)
    print("|---:" * (10 if exact else 7) + "|")
    for r in rows:
        line = (
            f"| {r['depth']:,} | {r['health_rps']:.0f} | {r['health_p99']:.1f} | {r['status_rps']:.0f} | "
            f"{r['status_p50']:.1f} | {r['status_p99']:.1f} | {r['status_rps'] / r['health_rps']:.2f} |"
        )
        if exact:
            line += (
                f" {r['exact_status_rps']:.0f} | {r['exact_status_p50']:.1f} | {r['exact_status_p99']:.1f} |"
            )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--depths", type=int, nargs="+", help="queue-depth sweep: status vs /health under wrk"
    )
    parser.add_argument("--exact", action="store_true", help="in the sweep, also positions counted per poll")
    args = parser.parse_args()
    if args.depths:
        depth_sweep(args.depths, args.seconds, args.exact)
        return

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        server = LiveServer(data, args=("--workers", "0"), env={"FRAMECAST_LOG_LEVEL": "warning"})
        worker_env = {**os.environ, "FRAMECAST_DATA_DIR": str(data), "FRAMECAST_POLL_SECONDS": "0.02"}
        worker = subprocess.Popen([sys.executable, "-c", WORKER], cwd=REPO, env=worker_env)
        try:
            server.wait_ready()
            address = ("127.0.0.1", server.port)
            rows = [asyncio.run(run_level(address, n, args.seconds)) for n in args.clients]
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
