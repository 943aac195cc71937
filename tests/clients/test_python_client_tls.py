"""fal-client over TLS, pointed at Framecast by environment variables alone (no code change at all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import KEY
from tests.live_server import REPO, LiveServer, probe_mp4

# What an unchanged application does: plain fal_client calls, configured only by its environment.
APPLICATION = """
import json, fal_client
endpoint = "fal-ai/pixverse/v5.5/text-to-video"
logs = []
def on_update(update):
    if isinstance(update, fal_client.InProgress):
        logs.extend(log["message"] for log in update.logs)
sync = fal_client.run(endpoint, arguments={"prompt": "a lighthouse in fog", "resolution": "360p", "seed": 11})
subscribed = fal_client.subscribe(endpoint, arguments={"prompt": "a lighthouse in fog", "resolution": "360p"},
                                  with_logs=True, on_queue_update=on_update)
print(json.dumps({"sync": sync, "subscribed": subscribed, "logs": logs}))
"""


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    data = tmp_path_factory.mktemp("tls-server")
    certs = data / "certs"
    subprocess.run([sys.executable, "-m", "framecast", "cert", "--out", str(certs)], cwd=REPO, check=True)
    cert, key = certs / "cert.pem", certs / "key.pem"
    args = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    env = {"FRAMECAST_API_KEYS": KEY}
    with LiveServer(data, env=env, args=args, scheme="https", host="localhost") as live:
        live.wait_ready(verify=str(cert))
        yield live, cert


def test_unchanged_application_runs_over_tls_by_environment_alone(
    tls_server: tuple[LiveServer, Path], tmp_path: Path
) -> None:
    live, cert = tls_server
    env = {
        **os.environ,
        "FAL_KEY": KEY,
        "FAL_RUN_HOST": f"localhost:{live.port}",
        "FAL_QUEUE_RUN_HOST": f"localhost:{live.port}/queue",
        "SSL_CERT_FILE": str(cert),
    }
    done = subprocess.run(
        [sys.executable, "-c", APPLICATION], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr + live.output()[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["sync"]["seed"] == 11
    assert out["sync"]["video"]["url"].startswith(f"https://localhost:{live.port}/files/")
    assert any("step" in message for message in out["logs"])
    video = probe_mp4(out["subscribed"]["video"]["url"], tmp_path / "tls.mp4", verify=str(cert))
    assert (video["width"], video["height"]) == (640, 360)
