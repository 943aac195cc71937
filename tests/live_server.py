"""A real `framecast serve` in a child process, on a free port, for tests that talk to it over the network."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _limit_files(count: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))


class LiveServer:
    """``framecast serve`` with its own data dir; ``url`` is its base URL. Stops on ``close``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: tuple[str, ...] = (),
        scheme: str = "http",
        host: str = "127.0.0.1",
        nofile: int | None = None,
        launcher: tuple[str, ...] = ("-m", "framecast"),
    ) -> None:
        """``nofile``: the server's file descriptor limit (RLIMIT_NOFILE), when a test needs a small one."""
        self.port = free_port()
        self.data_dir = data_dir
        self.url = f"{scheme}://{host}:{self.port}"
        self.log_path = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "FRAMECAST_DATA_DIR": str(data_dir),
            "FRAMECAST_MODEL": "tiny-wan",
            "FRAMECAST_POLL_SECONDS": "0.05",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        command = [
            sys.executable,
            *launcher,  # e.g. ("-m", "tests.instant_serve", "200", "0.05"): workers on a paced InstantEngine
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, *args],
            cwd=REPO,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if nofile is None else lambda: _limit_files(nofile),
        )

    def wait_ready(self, timeout: float = 60.0, verify: str | bool = False) -> LiveServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0, verify=verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.output()}")

    def rss_bytes(self) -> int:
        """The server process's resident memory."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe_mp4(url: str, dest: Path, verify: str | bool = False) -> dict:
    """Download a result's video and read its real size, frame count and codec back with PyAV."""
    import av  # here: the GPU image imports this module without PyAV

    response = httpx.get(url, timeout=30, verify=verify)
    response.raise_for_status()
    dest.write_bytes(response.content)
    with av.open(str(dest)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return {
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "frames": frames,
            "fps": float(stream.average_rate),
            "codec": stream.codec_context.name,
            "bytes": len(response.content),
            "audio": len(container.streams.audio) > 0,
        }


def serve_main(rest: Sequence[str], engine_factory: Any) -> int:
    """``framecast serve`` with the flags ``rest`` and workers built by ``engine_factory`` (a picklable test
    engine factory): what ``tests/instant_serve.py`` and ``tests/tiny_serve.py`` run as a process."""
    from framecast.cli import _configure_logging, build_parser, settings_from
    from framecast.errors import FramecastError
    from framecast.server import serve

    settings = settings_from(build_parser().parse_args(rest))
    _configure_logging(settings)
    try:
        serve(settings, engine_factory=engine_factory)
    except FramecastError as exc:
        print(f"framecast: error: {exc}", file=sys.stderr)
        return 2
    return 0
