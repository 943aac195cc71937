"""Chaos run: N jobs through a real `framecast serve` while workers, the API and the whole process group are
killed (-9) and restarted, and gracefully restarted with SIGTERM, at random.

Workers render with `InstantEngine` at a set pace (the dedicated fake at the hardware boundary; tests/instant_serve.py),
so every moment of a render can be hit. Every job has a webhook to a receiver on loopback. At the end it prints
what happened to every job and exits 1 on any loss: a job not finished (stuck), a job failed, a missing webhook, a
result written twice, or a stored file no result points to (orphan).

    .venv/bin/python bench/chaos.py [--jobs 40] [--workers 2] [--chaos-seconds 60] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from framecast.jobs import JobStatus, JobStore  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402
from tests.test_server import workers_for  # noqa: E402

SUBMIT = "/queue/fal-ai/pixverse/v5.5/text-to-video"
ACTIONS = ("kill9_worker", "kill9_api", "kill9_group", "sigterm_restart")


class Receiver(BaseHTTPRequestHandler):
    """Counts webhook deliveries per request id."""

    received: Counter = Counter()

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        Receiver.received[body["request_id"]] += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Cluster:
    """One data dir, a serve that is killed and restarted."""

    def __init__(self, data: Path, workers: int, steps: int, step_seconds: float) -> None:
        self.data = data
        self.args = ("--workers", str(workers))
        self.launcher = ("-m", "tests.instant_serve", str(steps), str(step_seconds))
        self.env = {
            "FRAMECAST_LEASE_SECONDS": "2",
            "FRAMECAST_HEARTBEAT_SECONDS": "0.3",
            "FRAMECAST_MAX_ATTEMPTS": "20",  # every job is killed often: a crash budget is not what is tested
            "FRAMECAST_STOP_GRACE_SECONDS": "10",
            "FRAMECAST_WEBHOOK_TIMEOUT_SECONDS": "2",
            "FRAMECAST_WEBHOOK_BACKOFF_SECONDS": "1,1,2,2,5",
            "FRAMECAST_WEBHOOK_ALLOW": "127.0.0.1/32",  # the receiver is on loopback
            "FRAMECAST_LOG_LEVEL": "warning",
        }
        self.server = self._start()
        self.restarts = 0

    def _start(self) -> LiveServer:
        server = LiveServer(self.data, env=self.env, args=self.args, launcher=self.launcher)
        server.wait_ready(timeout=60)
        return server

    def restart(self) -> None:
        self.server.close()
        self.server = self._start()
        self.restarts += 1

    def act(self, action: str, rng: random.Random) -> None:
        process = self.server.process
        if action == "kill9_worker":
            pids = workers_for(self.data)
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)
            return
        if action == "kill9_api":
            process.send_signal(signal.SIGKILL)  # its workers must die with it
            process.wait()
        elif action == "kill9_group":
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        else:
            os.killpg(process.pid, signal.SIGTERM)  # systemd's stop: running jobs handed back
            process.wait(timeout=30)
        self.restart()


def submit_all(cluster: Cluster, jobs: int, hook: str) -> list[str]:
    ids = []
    for i in range(jobs):
        for _ in range(100):  # bounded: the server may be restarting
            try:
                response = httpx.post(
                    f"{cluster.server.url}{SUBMIT}",
                    json={"prompt": f"chaos {i}", "resolution": "360p", "seed": i},
                    params={"fal_webhook": hook},
                    timeout=10,
                )
                if response.status_code == 200:
                    ids.append(response.json()["request_id"])
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return ids


def settle(store: JobStore, ids: list[str], until: float) -> None:
    while time.monotonic() < until:
        if all((job := store.get(i)) is not None and job.status is JobStatus.COMPLETED for i in ids):
            return
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--step-seconds", type=float, default=0.1)
    parser.add_argument("--chaos-seconds", type=float, default=60.0, help="how long faults are injected")
    parser.add_argument("--pause", type=float, nargs=2, default=(0.5, 2.5), help="seconds between faults")
    parser.add_argument("--settle-seconds", type=float, default=90.0, help="then how long to wait for all")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    actions: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        cluster = Cluster(data, args.workers, args.steps, args.step_seconds)
        store = JobStore.open(f"sqlite:///{data / 'framecast.db'}")
        try:
            began = time.monotonic()
            ids = submit_all(cluster, args.jobs, hook)
            # 1. Faults, until the chaos time is up or every job is done.
            while time.monotonic() - began < args.chaos_seconds:
                time.sleep(rng.uniform(*args.pause))
                if all(store.get(i).status is JobStatus.COMPLETED for i in ids):  # type: ignore[union-attr]
                    break
                action = rng.choice(ACTIONS)
                actions[action] += 1
                cluster.act(action, rng)
            # 2. Let it finish: every job, its webhook, and a housekeeping pass for orphaned files.
            settle(store, ids, time.monotonic() + args.settle_seconds)
            hook_deadline = time.monotonic() + args.settle_seconds
            while time.monotonic() < hook_deadline and any(Receiver.received[i] == 0 for i in ids):
                time.sleep(0.2)
            time.sleep(3)  # housekeeping runs every second in the API
            report = measure(store, data, ids, args.jobs)
        finally:
            store.close()
            cluster.server.close()
            receiver.shutdown()

    print(f"\nchaos: {args.jobs} jobs, {args.workers} workers, seed {args.seed}, {os.cpu_count()} cores")
    print("faults: " + ", ".join(f"{a} {actions[a]}" for a in ACTIONS) + f"; restarts {cluster.restarts}")
    print(
        "| submitted | completed | failed | stuck | duplicate results | orphan files | webhooks | "
        "duplicate webhooks | lost |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        "| {submitted} | {completed} | {failed} | {stuck} | {duplicates} | {orphans} | {webhooks} | "
        "{duplicate_webhooks} | {lost} |".format(**report)
    )
    if report["errors"]:
        print("failures:", report["errors"])
    return 1 if report["lost"] else 0


def measure(store: JobStore, data: Path, ids: list[str], wanted: int) -> dict:
    jobs = [store.get(i) for i in ids]
    done = [j for j in jobs if j is not None and j.status is JobStatus.COMPLETED]
    failed = [j for j in done if j.error is not None]
    files = Counter(path.name.rsplit("-a", 1)[0] for path in (data / "files").rglob("*.mp4"))
    referenced = {j.output["video"]["file_name"] for j in done if j.output}
    orphans = [p for p in (data / "files").rglob("*.mp4") if p.name not in referenced]
    report = {
        "submitted": len(ids),
        "completed": len(done) - len(failed),
        "failed": len(failed),
        "stuck": len(ids) - len(done),
        "duplicates": sum(1 for i in ids if files[i] > 1),
        "orphans": len(orphans) + len(store.orphan_files()),
        "webhooks": sum(1 for i in ids if Receiver.received[i] > 0),
        "duplicate_webhooks": sum(1 for i in ids if Receiver.received[i] > 1),  # at least once: allowed
        "errors": Counter(j.error_type for j in failed),
    }
    missing = len(ids) - report["webhooks"]
    report["lost"] = (wanted - len(ids)) + report["stuck"] + report["failed"] + report["duplicates"]
    report["lost"] += report["orphans"] + missing
    return report


if __name__ == "__main__":
    sys.exit(main())
