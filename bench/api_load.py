"""API load benchmark: N concurrent clients submit and poll status every 100 ms, as fal's Python client does.

The server is a real `framecast serve --workers 0` (API process, SQLite in WAL mode) plus one worker process whose
engine renders instantly (`InstantEngine`, the dedicated fake at the hardware boundary), so the numbers measure the
API and the job store, not a model. Prints a markdown table: submit throughput and status latency p50/p99 per N.

    .venv/bin/python bench/api_load.py [--clients 10 100 500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
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
