"""The official @fal-ai/client (npm), unchanged, through `proxyUrl` against a live Framecast server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.clients.conftest import KEY
from tests.live_server import LiveServer

JS_DIR = Path(__file__).resolve().parents[1] / "js"


def test_js_client_subscribe_and_queue_status_through_the_proxy(server: LiveServer) -> None:
    node = shutil.which("node")
    assert node, "Node.js is required for the JS client test (tests/setup_system.sh installs the client)"
    assert (JS_DIR / "node_modules" / "@fal-ai" / "client").is_dir(), "run tests/setup_system.sh first"

    done = subprocess.run(
        [node, str(JS_DIR / "subscribe.mjs"), server.url, KEY],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=JS_DIR,
    )

    assert done.returncode == 0, done.stderr + server.output()[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["data"]["video"]["content_type"] == "video/mp4"
    assert out["data"]["seed"] == 5
    assert out["requestId"]
    assert out["status"]["status"] == "COMPLETED"
    assert any("step" in message for message in out["logs"])
    assert out["fileStatus"] == 200
