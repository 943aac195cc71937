from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from framecast.config import Settings
from framecast.jobs import JobStore, NewJob
from framecast.webhooks import WebhookDispatcher, WebhookSigner, webhook_body


@dataclass
class Receiver:
    """A real HTTP endpoint on a free port that answers 500 to its first ``failures`` deliveries."""

    failures: int
    received: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def successes(self) -> list[tuple[dict[str, str], bytes]]:
        return [(headers, body) for status, headers, body in self.received if status == 200]


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    state = Receiver(failures=getattr(request, "param", 0))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                status = 500 if len(state.received) < state.failures else 200
                state.received.append((status, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    state.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    state.server.shutdown()
    state.server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        webhook_attempts=4,
        webhook_backoff_seconds=(0.05, 0.1),
        webhook_timeout_seconds=5,
        poll_seconds=0.02,
    ).resolved()


def finished_job(store: JobStore, url: str, *, output: dict | None = None, error: str | None = None) -> str:
    job = store.enqueue(NewJob(endpoint="e", input={"prompt": "p"}, owner="key1", webhook_url=url))
    store.claim("w", 30)
    if error is None:
        assert store.complete(job.id, 1, output if output is not None else {"video": {"url": "u"}, "seed": 7})
    else:
        assert store.fail(job.id, 1, error, "invalid_input", 422)
    return job.id


def public_key(jwks: dict) -> Ed25519PublicKey:
    (jwk,) = jwks["keys"]
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(jwks: dict, headers: dict[str, str], body: bytes) -> None:
    message = "\n".join(
        [
            headers["x-fal-webhook-request-id"],
            headers["x-fal-webhook-user-id"],
            headers["x-fal-webhook-timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    public_key(jwks).verify(bytes.fromhex(headers["x-fal-webhook-signature"]), message)  # raises if invalid


def drain(dispatcher: WebhookDispatcher, until: Any, timeout: float = 10.0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not until() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join()
    assert until(), "timed out"


@pytest.mark.parametrize("receiver", [2], indirect=True)
def test_a_receiver_that_fails_its_first_deliveries_gets_exactly_one_signed_success(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    job_id = finished_job(store, receiver.url)
    dispatcher = WebhookDispatcher(store, settings)

    drain(dispatcher, lambda: store.webhook_state(1) == "DELIVERED")
    time.sleep(0.2)  # nothing more arrives after the success

    assert [status for status, _, _ in receiver.received] == [500, 500, 200]
    ((headers, body),) = receiver.successes()
    verify(dispatcher.jwks(), headers, body)
    assert headers["x-fal-webhook-request-id"] == job_id
    assert headers["x-fal-webhook-user-id"] == "key1"
    assert abs(int(headers["x-fal-webhook-timestamp"]) - time.time()) < 60
    assert json.loads(body) == {
        "request_id": job_id,
        "gateway_request_id": job_id,
        "status": "OK",
        "payload": {"video": {"url": "u"}, "seed": 7},
    }
    assert any("Webhook delivery 2 of 4 failed" in e.message for e in store.logs(job_id))


def test_a_failed_job_is_delivered_as_an_error_with_its_detail(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    job_id = finished_job(store, receiver.url, error="prompt is not allowed")
    dispatcher = WebhookDispatcher(store, settings)

    assert dispatcher.deliver_once()

    ((headers, body),) = receiver.successes()
    verify(dispatcher.jwks(), headers, body)
    assert json.loads(body) == {
        "request_id": job_id,
        "gateway_request_id": job_id,
        "status": "ERROR",
        "error": "Invalid status code: 422",
        "payload": {"detail": "prompt is not allowed", "error_type": "invalid_input"},
    }


def test_a_payload_that_is_not_json_is_sent_as_null_with_payload_error(
    receiver: Receiver, store: JobStore
) -> None:
    finished_job(store, receiver.url)
    delivery = store.claim_webhook("d", 30)
    assert delivery is not None

    body = json.loads(webhook_body(dataclasses.replace(delivery, payload={"score": float("nan")})))

    assert body["status"] == "OK" and body["payload"] is None
    assert "not JSON serializable" in body["payload_error"]


@pytest.mark.parametrize("receiver", [100], indirect=True)
def test_delivery_gives_up_after_the_configured_number_of_attempts(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    job_id = finished_job(store, receiver.url)

    drain(WebhookDispatcher(store, settings), lambda: store.webhook_state(1) == "FAILED")

    assert len(receiver.received) == settings.webhook_attempts == 4
    assert "giving up" in store.logs(job_id)[-1].message


def test_an_unreachable_receiver_is_retried_not_crashed_on(store: JobStore, settings: Settings) -> None:
    finished_job(store, "http://127.0.0.1:9/nothing-listens-here")
    dispatcher = WebhookDispatcher(store, settings)

    assert dispatcher.deliver_once()
    assert store.webhook_state(1) == "PENDING"


def test_a_delivery_in_flight_when_the_server_died_is_sent_after_restart(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    finished_job(store, receiver.url)
    assert store.claim_webhook("the-server-that-died", lease_seconds=0.05) is not None
    restarted = WebhookDispatcher(store, settings)
    assert not restarted.deliver_once()  # still leased to the dead server

    time.sleep(0.1)

    assert restarted.deliver_once()
    assert len(receiver.successes()) == 1
    assert store.webhook_state(1) == "DELIVERED"


def test_the_signing_key_is_created_once_and_readable_only_by_its_owner(settings: Settings) -> None:
    first = WebhookSigner.load_or_create(settings.webhook_key_file)
    second = WebhookSigner.load_or_create(settings.webhook_key_file)

    assert first.jwks() == second.jwks()
    assert first.kid and first.jwks()["keys"][0]["kid"] == first.kid
    assert stat.S_IMODE(Path(settings.webhook_key_file).stat().st_mode) == 0o600
