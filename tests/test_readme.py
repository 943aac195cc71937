"""The README's examples, run as written against a live server (only the host and port are swapped in)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import REPO, LiveServer

README = (REPO / "README.md").read_text()
JS_DIR = REPO / "tests" / "js"
DOC_HOST = "http://127.0.0.1:8000"


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def curl_commands() -> list[str]:
    """Every curl command of the README's bash blocks, continuation lines joined."""
    commands = []
    for block in code_blocks("bash"):
        joined = block.replace("\\\n", " ")
        commands += [line.split(" # ")[0] for line in joined.splitlines() if line.startswith("curl ")]
    return commands


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("readme")) as live:
        live.wait_ready()
        yield live


def run_curl(command: str, server: LiveServer) -> dict:
    done = subprocess.run(
        ["bash", "-c", command.replace(DOC_HOST, server.url)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_readme_curl_examples_work_in_order(server: LiveServer) -> None:
    sync, submit, status, result = curl_commands()

    assert run_curl(sync, server)["video"]["content_type"] == "video/mp4"
    queued = run_curl(submit, server)
    assert queued["status"] == "IN_QUEUE"
    request_id = queued["request_id"]
    body = run_curl(status.replace("REQUEST_ID", request_id), server)
    while body["status"] != "COMPLETED":
        assert body["status"] in ("IN_QUEUE", "IN_PROGRESS")
        body = run_curl(status.replace("REQUEST_ID", request_id), server)
    assert run_curl(result.replace("REQUEST_ID", request_id), server)["seed"] == 42


def test_the_readme_python_example_over_plain_http_works(server: LiveServer) -> None:
    subscribe = next(block for block in code_blocks("python") if "subscribe" in block)
    plain_http = next(block for block in code_blocks("python") if "RUN_URL_FORMAT" in block)
    program = (plain_http + subscribe).replace(DOC_HOST, server.url)
    env = {**os.environ, "FAL_KEY": "any:thing"}

    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr
    assert f"{server.url}/files/" in done.stdout


def test_the_readme_javascript_example_works(server: LiveServer) -> None:
    node = shutil.which("node")
    assert node and (JS_DIR / "node_modules" / "@fal-ai" / "client").is_dir(), "run tests/setup_system.sh"
    (example,) = code_blocks("js")
    script = JS_DIR / f"readme-{uuid.uuid4().hex}.mjs"  # inside tests/js, where the client is installed
    script.write_text(example.replace(DOC_HOST, server.url))
    try:
        env = {**os.environ, "FAL_KEY": "any:thing"}
        done = subprocess.run([node, str(script)], env=env, capture_output=True, text=True, timeout=300)
    finally:
        script.unlink()

    assert done.returncode == 0, done.stderr
    assert f"{server.url}/files/" in done.stdout


def test_the_readme_lists_every_cli_command() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "framecast", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for command in ("serve", "api", "worker", "generate", "plan", "models", "cert"):
        assert f"`framecast {command}" in README
        assert command in help_text


def test_the_readme_configuration_table_names_real_settings() -> None:
    from framecast.config import Settings

    fields = {name.upper() for name in Settings.__dataclass_fields__}
    named = set(re.findall(r"`FRAMECAST_([A-Z_]+)`", README))
    assert named and named <= fields, named - fields


def test_the_readme_links_only_to_files_that_exist() -> None:
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)\)", README):
        assert (Path(REPO) / target).exists(), target
