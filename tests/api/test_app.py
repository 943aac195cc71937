"""``create_app``: the routes it documents, the playground, its background threads, and a light import."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from framecast.api import create_app
from framecast.jobs.store import JobStore
from tests.api.conftest import ENDPOINT, egress_for, make_settings, requests_path, run_job, submit
from tests.live_server import REPO


def test_openapi_lists_the_real_routes_and_the_endpoint_schema(shared_client: TestClient) -> None:
    schema = shared_client.get("/openapi.json").json()

    paths = schema["paths"]
    assert {"post"} <= paths[f"/{ENDPOINT}"].keys()
    assert {"post"} <= paths[f"/queue/{ENDPOINT}"].keys()
    assert "get" in paths["/queue/fal-ai/pixverse/requests/{request_id}/status"]
    assert "get" in paths["/queue/fal-ai/pixverse/requests/{request_id}/status/stream"]
    assert "get" in paths["/queue/fal-ai/pixverse/requests/{request_id}"]
    assert "put" in paths["/queue/fal-ai/pixverse/requests/{request_id}/cancel"]
    assert {"get", "post", "put"} <= paths["/api/fal/proxy"].keys()
    assert "get" in paths["/files/{key}"]
    assert "/health" in paths and "/.well-known/jwks.json" in paths

    components = schema["components"]["schemas"]
    body_ref = paths[f"/queue/{ENDPOINT}"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "$ref"
    ]
    assert body_ref == "#/components/schemas/TextToVideoInput"
    inputs = components["TextToVideoInput"]
    assert list(inputs["properties"])[:4] == ["prompt", "aspect_ratio", "resolution", "duration"]
    assert inputs["required"] == ["prompt"]
    assert components["Duration"]["enum"] == ["5", "8", "10"]
    assert "video" in components["TextToVideoOutput"]["properties"]
    ok = paths[f"/{ENDPOINT}"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"] == "#/components/schemas/TextToVideoOutput"


def test_openapi_documents_every_status_code_the_api_can_answer(shared_client: TestClient) -> None:
    paths = shared_client.get("/openapi.json").json()["paths"]

    def codes(path: str, method: str) -> set[int]:
        return {int(code) for code in paths[path][method]["responses"]}

    everywhere = {408, 431, 500, 503}
    submit = everywhere | {200, 401, 413, 415, 422, 429, 507}
    assert codes(f"/queue/{ENDPOINT}", "post") == submit
    assert codes(f"/{ENDPOINT}", "post") == submit | {504}
    request = "/queue/fal-ai/pixverse/requests/{request_id}"
    assert codes(f"{request}/status", "get") == everywhere | {200, 202, 401, 403, 404, 422}
    assert codes(f"{request}/status/stream", "get") == everywhere | {200, 401, 403, 404, 422}
    assert codes(request, "get") == everywhere | {200, 400, 401, 403, 404, 410, 422, 504}
    assert codes(f"{request}/cancel", "put") == everywhere | {202, 400, 401, 403, 404, 422}
    assert codes("/files/{key}", "get") == everywhere | {200, 404, 416, 422}
    assert codes("/health", "get") == everywhere | {200}
    too_many = paths[f"/queue/{ENDPOINT}"]["post"]["responses"]["429"]
    assert "Retry-After" in too_many["headers"]
    assert too_many["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/FalError"


def test_jwks_publishes_the_webhook_signing_key(shared_client: TestClient) -> None:
    (key,) = shared_client.get("/.well-known/jwks.json").json()["keys"]

    assert (key["kty"], key["crv"]) == ("OKP", "Ed25519")


def test_the_playground_is_served_at_the_root(shared_client: TestClient) -> None:
    response = shared_client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_housekeeping_thread_ends_requests_past_their_start_timeout(
    client: TestClient, store: JobStore
) -> None:
    request_id = submit(client, headers={"X-Fal-Request-Timeout": "0.1"})["request_id"]

    deadline = time.monotonic() + 5
    while (status := client.get(requests_path(request_id, "/status")).json())["status"] != "COMPLETED":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)

    assert status["error_type"] == "request_timeout"


def test_the_api_never_imports_the_model_stack() -> None:
    code = (
        "import sys, tempfile, time\n"
        "t = time.process_time()\n"
        "from framecast.api import create_app\n"
        "from framecast.config import Settings\n"
        "import framecast.server, framecast.cli\n"
        "create_app(Settings.from_env({}, data_dir=tempfile.mkdtemp()))\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print(heavy, time.process_time() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)

    heavy, seconds = done.stdout.rsplit("]", 1)
    assert heavy == "["
    assert float(seconds) < 1.5  # CPU seconds: about 0.6 here; wall time depends on what shares the cores


def test_the_api_process_delivers_webhooks_signed_with_its_published_key(tmp_path: Path) -> None:
    # The receiver listens on loopback, which the egress policy refuses unless allowed.
    settings = make_settings(tmp_path, webhook_allow="127.0.0.1/32")
    store = JobStore.open(settings.database_url)
    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                (
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(int(self.headers["Content-Length"])),
                )
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    app = create_app(settings, store=store, egress=egress_for(settings))
    with TestClient(app) as client, ThreadingHTTPServer(("127.0.0.1", 0), Hook) as hook:
        threading.Thread(target=hook.serve_forever, args=(0.02,), daemon=True).start()
        url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
        request_id = submit(client, params={"fal_webhook": url})["request_id"]
        run_job(store)
        deadline = time.monotonic() + 10
        while not received:
            assert time.monotonic() < deadline, "no webhook delivered"
            time.sleep(0.02)
        hook.shutdown()
        (jwk,) = client.get("/.well-known/jwks.json").json()["keys"]
    store.close()

    headers, body = received[0]
    payload = json.loads(body)
    assert (payload["request_id"], payload["status"], payload["payload"]["seed"]) == (request_id, "OK", 1)
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"]))  # padded, as fal's
    message = "\n".join(
        [
            request_id,
            headers["x-fal-webhook-user-id"],
            headers["x-fal-webhook-timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    public.verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message)  # raises if forged
