"""The ``framecast`` command: help, flags over environment, one-line errors, cert, generate, and ``serve``
as a real process tree (API + supervised worker children, TLS, clean shutdown, a missing model)."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from framecast.cli import build_parser, main, settings_from
from tests.live_server import REPO, LiveServer

ENDPOINT = "fal-ai/pixverse/v5.5/text-to-video"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FRAMECAST_"):
            monkeypatch.delenv(name)


def test_help_names_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])

    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for command in ("serve", "api", "worker", "generate", "models", "cert"):
        assert f"    {command}" in out
    assert "FRAMECAST_" in out


def test_serve_help_explains_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])

    out = capsys.readouterr().out
    for flag in (
        "--host",
        "--port",
        "--workers",
        "--insecure-no-auth",
        "--ssl-certfile",
        "--ssl-keyfile",
        "--model",
    ):
        assert flag in out


def test_flags_override_the_environment_and_absent_flags_keep_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMECAST_PORT", "9000")
    monkeypatch.setenv("FRAMECAST_MODEL", "tiny-wan")
    monkeypatch.setenv("FRAMECAST_WORKERS", "3")

    settings = settings_from(build_parser().parse_args(["serve", "--port", "9100", "--workers", "0"]))

    assert (settings.port, settings.workers, settings.model) == (9100, 0, "tiny-wan")
    assert settings.insecure_no_auth is False


def test_api_command_runs_no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAMECAST_WORKERS", "4")

    assert settings_from(build_parser().parse_args(["api"]), workers=0).workers == 0


def test_serve_on_a_network_address_without_keys_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("framecast: error: refusing to listen on 0.0.0.0")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_port_already_in_use_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        code = main(["api", "--port", str(port), "--data-dir", str(tmp_path)])

    assert code == 2
    assert (
        capsys.readouterr().err
        == f"framecast: error: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_a_bad_environment_value_is_one_line_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "framecast", "api", "--data-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "FRAMECAST_PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2
    assert done.stderr.startswith("framecast: error: FRAMECAST_PORT='eighty'")
    assert "Traceback" not in done.stderr


def test_cert_writes_a_localhost_certificate_and_a_private_key(tmp_path: Path) -> None:
    assert main(["cert", "--out", str(tmp_path / "tls")]) == 0

    cert = x509.load_pem_x509_certificate((tmp_path / "tls" / "cert.pem").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert (tmp_path / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600


def test_generate_writes_an_mp4_with_the_instant_engine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fox.mp4"

    code = main(
        [
            "generate",
            "a fox",
            "--model",
            "instant",
            "--resolution",
            "360p",
            "--seed",
            "9",
            "--duration",
            "8",
            "--aspect-ratio",
            "1:1",
            "-o",
            str(out),
            "--data-dir",
            str(tmp_path),
        ]
    )

    assert code == 0
    assert out.read_bytes()[4:8] == b"ftyp"
    assert "seed 9" in capsys.readouterr().out


def test_generate_with_an_invalid_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "x", "--model", "instant", "--resolution", "1080p", "--duration", "10"])

    assert code == 2
    assert (
        capsys.readouterr().err == "framecast: error: duration: 1080p videos are limited to 5 or 8 seconds\n"
    )


def test_models_verify_of_missing_weights_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["models", "verify", "wan2.1-t2v-1.3b"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("framecast: error: ") and err.count("\n") == 1


def test_models_list_prints_the_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "list"]) == 0

    assert "tiny-wan" in capsys.readouterr().out


# -- `framecast serve` as a real process tree ---------------------------------------------------------------


def workers_of(pid: int) -> list[int]:
    """The worker children of a server (not multiprocessing's resource tracker)."""
    # Every thread's children: the supervisor thread spawns the replacements.
    found = [
        int(c)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for c in (task / "children").read_text().split()
    ]
    return [child for child in found if b"spawn_main" in _cmdline(child)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture(scope="module")
def tls_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    data = tmp_path_factory.mktemp("serve")
    subprocess.run(
        [sys.executable, "-m", "framecast", "cert", "--out", str(data / "tls")], cwd=REPO, check=True
    )
    cert = data / "tls" / "cert.pem"
    args = ("--ssl-certfile", str(cert), "--ssl-keyfile", str(data / "tls" / "key.pem"))
    with LiveServer(
        data, env={"FRAMECAST_MODEL": "instant"}, args=args, scheme="https", host="localhost"
    ) as live:
        live.wait_ready(verify=str(cert))
        yield live, cert


def test_serve_speaks_tls_to_the_official_python_client_configured_by_environment(
    tls_serve: tuple[LiveServer, Path],
) -> None:
    live, cert = tls_serve
    env = {
        **os.environ,
        "FAL_KEY": "any:thing",
        "SSL_CERT_FILE": str(cert),
        "FAL_RUN_HOST": f"localhost:{live.port}",
        "FAL_QUEUE_RUN_HOST": f"localhost:{live.port}/queue",
    }
    app = (
        "import json, fal_client\n"
        "args = {'prompt': 'a fox', 'resolution': '360p'}\n"
        f"run = fal_client.run('{ENDPOINT}', arguments={{**args, 'seed': 3}})\n"
        f"sub = fal_client.subscribe('{ENDPOINT}', arguments=args, with_logs=True)\n"
        "print(json.dumps([run, sub]))\n"
    )
    done = subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr + live.output()[-2000:]
    run, sub = json.loads(done.stdout)
    assert run["seed"] == 3
    assert sub["video"]["url"].startswith(f"https://localhost:{live.port}/files/")
    by_ip = httpx.get(f"https://127.0.0.1:{live.port}/health", verify=str(cert))
    assert by_ip.status_code == 200


def test_a_crashed_worker_is_restarted_and_the_api_stays_up(tls_serve: tuple[LiveServer, Path]) -> None:
    live, cert = tls_serve
    (worker,) = workers_of(live.process.pid)

    os.kill(worker, signal.SIGKILL)
    assert httpx.get(f"{live.url}/health", verify=str(cert)).status_code == 200
    deadline = time.monotonic() + 30
    while not (replacement := [pid for pid in workers_of(live.process.pid) if pid != worker]):
        assert time.monotonic() < deadline, live.output()[-2000:]
        time.sleep(0.1)
    response = httpx.post(
        f"{live.url}/{ENDPOINT}",
        json={"prompt": "after the crash", "resolution": "360p"},
        verify=str(cert),
        timeout=30,
    )

    assert response.status_code == 200, response.text
    assert "restarting" in live.output()
    assert replacement


def test_sigterm_stops_the_api_and_its_workers_cleanly(tls_serve: tuple[LiveServer, Path]) -> None:
    live, _ = tls_serve
    workers = workers_of(live.process.pid)

    live.process.send_signal(signal.SIGTERM)  # the server alone; it must stop its children itself
    code = live.process.wait(timeout=30)

    assert code == 0, live.output()[-2000:]
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_serve_with_missing_model_weights_exits_2_with_the_engine_sentence(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "FRAMECAST_DATA_DIR": str(tmp_path),
        "FRAMECAST_MODEL": "wan2.1-t2v-1.3b",
        "FRAMECAST_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "-m", "framecast", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("framecast: error: The weights of model wan2.1-t2v-1.3b")
    assert done.stderr.count("The weights of model") == 1  # said once, by the command, not by each process
    assert "Traceback" not in done.stderr


def test_several_workers_get_one_gpu_each() -> None:
    from framecast.server import gpu_for

    assert gpu_for(0, 1, {}) is None  # one worker sees every GPU, as configured
    assert [gpu_for(i, 3, {}) for i in range(3)] == ["0", "1", "2"]
    assert [gpu_for(i, 2, {"CUDA_VISIBLE_DEVICES": "4,6"}) for i in range(2)] == ["4", "6"]
    assert gpu_for(1, 2, {"CUDA_VISIBLE_DEVICES": "4"}) is None  # too few listed: leave the user's choice
    assert gpu_for(1, 2, {"CUDA_VISIBLE_DEVICES": ""}) is None  # explicitly no GPU


def test_jobs_queued_before_an_api_restart_all_complete_after_it(tmp_path: Path) -> None:
    body = {"prompt": "queued across a restart", "resolution": "360p"}
    with LiveServer(tmp_path, args=("--workers", "0")) as api_only:
        api_only.wait_ready()
        submitted = [httpx.post(f"{api_only.url}/queue/{ENDPOINT}", json=body).json() for _ in range(3)]
    assert api_only.process.returncode == 0

    with LiveServer(tmp_path, env={"FRAMECAST_MODEL": "instant"}) as serve:
        serve.wait_ready()
        for request in submitted:
            status_url = f"{serve.url}/queue/fal-ai/pixverse/requests/{request['request_id']}/status"
            deadline = time.monotonic() + 30
            while (status := httpx.get(status_url)).status_code != 200:
                assert time.monotonic() < deadline, serve.output()[-2000:]
                time.sleep(0.05)
            assert "error" not in status.json()
