"""Service under faults (issue 11): what slow and hostile clients cost a real `framecast serve --workers 0`.

Run it against this checkout, and against another one (e.g. main before the fix) with ``--repo``: the same
scenarios, the same clients, on loopback only. Prints a markdown table.

1. webhook delay: six receivers that accept a connection and never answer, then another key's receiver; how
   long after its request ends does that receiver get its webhook?
2. big headers: one complete 8 MiB header (what status?), then ten unfinished 32 MiB headers: the API process's
   resident memory before and after.
3. slowloris: 400 connections sending a head a byte every 0.25 s, and 50 sending a body so; how long until the
   server answers or closes them (observed every 0.25 s, up to ``--hold-limit`` seconds)?
4. descriptors: with RLIMIT_NOFILE 1024, 1100 half-sent requests; does /health answer?

    .venv/bin/python bench/faults.py [--repo /work/main] [--only webhooks,headers,slowloris,descriptors]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parents[1]
SUBMIT = "/queue/fal-ai/pixverse/v5.5/text-to-video"
BODY = {"prompt": "fault bench", "resolution": "360p"}
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(
    repo: Path, env: dict[str, str] | None = None, nofile: int | None = None
) -> Iterator[tuple[str, int]]:
    """`framecast serve --workers 0` from ``repo``'s code; yields its base URL and pid."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="faults-"))
    full_env = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "FRAMECAST_DATA_DIR": str(data),
        "FRAMECAST_POLL_SECONDS": "0.05",
        "FRAMECAST_LOG_LEVEL": "warning",
        **(env or {}),
    }

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    command = [sys.executable, "-m", "framecast", "serve", "--workers", "0", "--port", str(port)]
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        command, cwd=repo, env=full_env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError((data / "server.log").read_text())
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# 1. Webhooks.
def webhook_delay(repo: Path) -> list[tuple[str, str]]:
    arrived = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            arrived.set()

        def log_message(self, *args: object) -> None:
            pass

    holes = []
    for n in range(2, 8):  # six hosts on loopback that never answer: listening, never accepting
        sock = socket.socket()
        sock.bind((f"127.0.0.{n}", 0))
        sock.listen(16)
        holes.append(sock)
    env = {"FRAMECAST_WEBHOOK_ALLOW": "127.0.0.0/8"}  # receivers on this host; ignored before issue 11
    with ThreadingHTTPServer(("127.0.0.1", 0), Hook) as hook, serve(repo, env) as (url, _):
        threading.Thread(target=hook.serve_forever, args=(0.02,), daemon=True).start()
        with httpx.Client(base_url=url, timeout=10) as client:
            targets = [f"http://{h.getsockname()[0]}:{h.getsockname()[1]}/hook" for h in holes]
            targets.append(f"http://127.0.0.1:{hook.server_address[1]}/hook")
            ids = [
                client.post(SUBMIT, json=BODY, params={"fal_webhook": t}).json()["request_id"]
                for t in targets
            ]
            for request_id in ids[:-1]:
                client.put(f"/queue/fal-ai/pixverse/requests/{request_id}/cancel")
            time.sleep(0.5)  # the six are claimed first
            started = time.monotonic()
            client.put(f"/queue/fal-ai/pixverse/requests/{ids[-1]}/cancel")
            got = arrived.wait(150)
            delay = time.monotonic() - started
        hook.shutdown()
    for sock in holes:
        sock.close()
    return [("webhook delay behind 6 receivers that never answer", f"{delay:.2f} s" if got else "> 150 s")]


# 2. Big headers.
def big_headers(repo: Path) -> list[tuple[str, str]]:
    with serve(repo) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(
                    b"GET /health HTTP/1.1\r\nHost: b\r\nConnection: close\r\nX-Big: "
                    + b"a" * 8 * MiB
                    + b"\r\n\r\n"
                )
            status = read_status(sock, 10)
        before = rss(pid)
        senders = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        for sender in senders:
            sender.settimeout(20)
            with contextlib.suppress(OSError):
                sender.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nX-Big: " + b"a" * 32 * MiB)
        time.sleep(1)
        after = rss(pid)
        for sender in senders:
            sender.close()
    return [
        ("an 8 MiB header is answered", status),
        ("API RSS before → with ten unfinished 32 MiB headers", f"{before / MiB:.0f} → {after / MiB:.0f} MB"),
    ]


def read_status(sock: socket.socket, timeout: float) -> str:
    sock.settimeout(timeout)
    received = b""
    with contextlib.suppress(OSError):
        while b"\r\n" not in received and (chunk := sock.recv(4096)):
            received += chunk
    line = received.split(b"\r\n", 1)[0].decode(errors="replace")
    return line.split(" ", 1)[1] if " " in line else "no answer (connection closed)"


# 3. Slowloris.
def slowloris(repo: Path, hold_limit: float) -> list[tuple[str, str]]:
    with serve(repo) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        started = time.monotonic()
        heads = [open_slow(port, b"GET /health HTTP/1.1\r\nHost: s\r\n") for _ in range(400)]
        post = b"POST " + SUBMIT.encode() + b" HTTP/1.1\r\nHost: s\r\nContent-Length: 1000\r\n\r\n{"
        bodies = [open_slow(port, post) for _ in range(50)]
        held = {id(s): 0.0 for s in heads + bodies}
        health_ok = health_tries = 0
        while time.monotonic() - started < hold_limit and any(v == 0.0 for v in held.values()):
            for sock in heads + bodies:
                if held[id(sock)] == 0.0 and not trickle(sock):
                    held[id(sock)] = time.monotonic() - started
            health_tries += 1
            with contextlib.suppress(httpx.HTTPError):
                health_ok += httpx.get(f"{url}/health", timeout=2).status_code == 200
            time.sleep(0.25)
        for sock in heads + bodies:
            sock.close()

    def summary(group: list[socket.socket]) -> str:
        times = [held[id(s)] for s in group]
        open_ = sum(1 for t in times if t == 0.0)
        closed = [t for t in times if t]
        if not closed:
            return f"all held past {hold_limit:.0f} s"
        tail = f", {open_} still held at {hold_limit:.0f} s" if open_ else ""
        return f"median {statistics.median(closed):.1f} s, max {max(closed):.1f} s{tail}"

    return [
        ("400 slowloris heads held", summary(heads)),
        ("50 slow bodies held", summary(bodies)),
        ("/health answered meanwhile", f"{health_ok} of {health_tries}"),
    ]


def open_slow(port: int, start: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(start)
    sock.setblocking(False)
    return sock


def trickle(sock: socket.socket) -> bool:
    """Send one more byte; ``False`` once the server has answered (a 408) or closed the connection."""
    try:
        sock.recv(65536)
        return False
    except BlockingIOError:
        pass
    except OSError:
        return False
    try:
        sock.send(b"X")
    except BlockingIOError:
        pass
    except OSError:
        return False
    return True


# 4. Descriptors.
def descriptors(repo: Path) -> list[tuple[str, str]]:
    with serve(repo, {"FRAMECAST_HEADER_TIMEOUT_SECONDS": "60"}, nofile=1024) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        half = []
        for _ in range(1100):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: d\r\n")
            half.append(sock)
        time.sleep(1)
        started = time.monotonic()
        try:
            answer = str(httpx.get(f"{url}/health", timeout=5).status_code)
        except httpx.HTTPError as exc:
            answer = f"failed ({type(exc).__name__})"
        took = time.monotonic() - started
        for sock in half:
            sock.close()
    return [("/health with 1100 half-sent requests and 1024 descriptors", f"{answer} in {took:.2f} s")]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout whose code to run")
    parser.add_argument("--only", default="webhooks,headers,slowloris,descriptors")
    parser.add_argument("--hold-limit", type=float, default=65.0, help="how long to watch slow connections")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    scenarios = {
        "webhooks": lambda: webhook_delay(args.repo),
        "headers": lambda: big_headers(args.repo),
        "slowloris": lambda: slowloris(args.repo, args.hold_limit),
        "descriptors": lambda: descriptors(args.repo),
    }
    rev = subprocess.run(
        ["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    print(f"{args.repo} @ {rev.stdout.strip()}\n")
    print("| scenario | result |\n|---|---|")
    for name in args.only.split(","):
        for label, value in scenarios[name]():
            print(f"| {label} | {value} |", flush=True)


if __name__ == "__main__":
    main()
