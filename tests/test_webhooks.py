from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import json
import logging
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from framecast.config import Settings
from framecast.egress import EgressPolicy
from framecast.jobs import JobStore, NewJob
from framecast.jobs.tables import webhooks
from framecast.webhooks import WebhookDispatcher, WebhookSigner, webhook_body
from tests.fake_dns import FakeDNS


@dataclass
class Receiver:
    """A real HTTP endpoint on a free port that answers 500 to its first ``failures`` deliveries."""

    failures: int
    received: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def server_address_port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address_port}/hook"

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
        webhook_allow="127.0.0.0/8",  # the receivers here listen on loopback, which the policy refuses by default
    ).resolved()


def finished_job(
    store: JobStore, url: str, *, output: dict | None = None, error: str | None = None, owner: str = "key1"
) -> str:
    job = store.enqueue(NewJob(endpoint="e", input={"prompt": "p"}, owner=owner, webhook_url=url))
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
    assert any("Webhook delivery failed (attempt 2 of 4)" in e.message for e in store.logs(job_id))


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
    assert store.claim_webhook("the-server-that-died", lease_seconds=1.0) is not None
    restarted = WebhookDispatcher(store, settings)
    assert not restarted.deliver_once()  # still leased to the dead server

    time.sleep(1.0)

    assert restarted.deliver_once()
    assert len(receiver.successes()) == 1
    assert store.webhook_state(1) == "DELIVERED"


def test_the_signing_key_is_created_once_and_readable_only_by_its_owner(settings: Settings) -> None:
    first = WebhookSigner.load_or_create(settings.webhook_key_file)
    second = WebhookSigner.load_or_create(settings.webhook_key_file)

    assert first.jwks() == second.jwks()
    assert first.kid and first.jwks()["keys"][0]["kid"] == first.kid
    assert stat.S_IMODE(Path(settings.webhook_key_file).stat().st_mode) == 0o600


# Issue 11: every try counts, bad rows end, slow receivers hold up only themselves, the policy holds after DNS.


@contextmanager
def black_holes(*hosts: str) -> Iterator[list[str]]:
    """Receivers that never answer: listening sockets nobody accepts from. The kernel completes the handshake
    and buffers the request, so a sender waits for an answer until its own timeout."""
    sockets = []
    try:
        for host in hosts:
            sock = socket.socket()
            sock.bind((host, 0))
            sock.listen(64)
            sockets.append(sock)
        yield [
            f"http://{host}:{sock.getsockname()[1]}/hook" for host, sock in zip(hosts, sockets, strict=True)
        ]
    finally:
        for sock in sockets:
            sock.close()


def cancelled_job(store: JobStore, url: str, owner: str) -> str:
    """A finished job with a webhook, the quick way: cancelling a queued job finishes it and queues its webhook."""
    job = store.enqueue(NewJob(endpoint="e", input={"prompt": "p"}, owner=owner, webhook_url=url))
    store.cancel(job.id)
    return job.id


def delivered_to(receiver: Receiver, job_id: str) -> bool:
    return any(headers["x-fal-webhook-request-id"] == job_id for headers, _ in receiver.successes())


def outbox_states(store: JobStore) -> dict[str, int]:
    with store._engine.connect() as conn:
        rows = conn.execute(select(webhooks.c.state, func.count()).group_by(webhooks.c.state)).all()
    return {state: count for state, count in rows}


BAD_URLS = (
    "http://example.com/a\r\nX-Injected: 1",
    "http://exa mple.com/hook",
    "http://[::1/hook",
    "ftp://example.com/hook",
    "http:///hook",
    "http://user:secret@example.com/hook",
    "http://2130706433/hook",
    "http://example.com:99999/hook",
    "https://" + "a" * 3000 + ".example/",
    "http://ex\x00ample.com/",
)


def test_rows_an_older_release_accepted_with_bad_urls_fail_and_do_not_stop_another_keys_webhook(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    # What ~300 poisoned rows did on main: InvalidURL was no counted try, so the oldest-first claim cycled through
    # them for ever and bob's webhook never came. The store accepts any URL, as releases before issue 11 did.
    for index in range(300):
        cancelled_job(store, BAD_URLS[index % len(BAD_URLS)], owner="mallory")
    bobs = cancelled_job(store, receiver.url, owner="bob")
    started = time.monotonic()

    drain(WebhookDispatcher(store, settings), lambda: delivered_to(receiver, bobs))

    assert time.monotonic() - started < 10
    drain(WebhookDispatcher(store, settings), lambda: outbox_states(store) == {"FAILED": 300, "DELIVERED": 1})


@pytest.mark.parametrize(
    ("hosts", "per_host"),
    [
        # Six receivers that never answer, one key's webhooks each: on main, one sender thread made bob wait
        # for all six timeouts (90 s with the default 15 s).
        (("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"), 4),
        # Twelve deliveries to one host that never answers: at most per_host of them are in flight.
        (("127.0.0.2",) * 12, 2),
        # One key's deliveries to as many hosts as there are slots: that key gets half of them.
        (tuple(f"127.0.0.{n}" for n in range(2, 10)), 4),
    ],
    ids=["six-hosts", "one-host", "one-key-many-hosts"],
)
def test_receivers_that_never_answer_do_not_delay_another_keys_webhook(
    receiver: Receiver, store: JobStore, settings: Settings, hosts: tuple[str, ...], per_host: int
) -> None:
    settings = dataclasses.replace(
        settings, webhook_timeout_seconds=30, webhook_concurrency=8, webhook_per_host=per_host
    )
    with black_holes(*hosts) as urls:
        for url in urls:
            cancelled_job(store, url, owner="mallory")
        bobs = cancelled_job(store, receiver.url, owner="bob")
        started = time.monotonic()

        drain(WebhookDispatcher(store, settings), lambda: delivered_to(receiver, bobs), timeout=20)

        assert time.monotonic() - started < 10  # well before any black hole times out (30 s)


def test_a_receiver_that_never_answers_costs_one_counted_try_of_at_most_the_timeout(
    store: JobStore, settings: Settings
) -> None:
    settings = dataclasses.replace(settings, webhook_timeout_seconds=0.5)
    with black_holes("127.0.0.2") as (url,):
        job_id = cancelled_job(store, url, owner="key1")
        started = time.monotonic()

        assert WebhookDispatcher(store, settings).deliver_once()

        assert time.monotonic() - started < 5
    assert store.webhook_state(1) == "PENDING"
    assert store.logs(job_id)[-1].message == "Webhook delivery failed (attempt 1 of 4); retrying in 0.05 s."


@pytest.mark.parametrize("receiver", [100], indirect=True)
def test_a_failed_try_leaves_the_receivers_answer_in_the_server_log_only(
    receiver: Receiver, store: JobStore, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    refused = cancelled_job(store, "http://127.0.0.1:9/nothing-listens-here", owner="key1")
    answered = cancelled_job(store, receiver.url, owner="key1")
    dispatcher = WebhookDispatcher(store, settings)

    with caplog.at_level(logging.WARNING, logger="framecast.webhooks"):
        assert dispatcher.deliver_once() and dispatcher.deliver_once()

    for job_id in (refused, answered):
        (entry,) = [e for e in store.logs(job_id) if "Webhook" in e.message]
        assert entry.message == "Webhook delivery failed (attempt 1 of 4); retrying in 0.05 s."
    assert "ConnectError" in caplog.text and "HTTP 500" in caplog.text


def test_a_name_that_resolves_to_loopback_at_connect_time_is_refused_after_a_public_answer_at_submit(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    dns = FakeDNS({"rebind.example": ("93.184.215.14",)})
    policy = EgressPolicy(resolver=dns)  # the default policy: loopback refused
    url = f"http://rebind.example:{receiver.server_address_port}/hook"
    policy.admit(url)  # what submit checks: public, accepted
    job_id = cancelled_job(store, url, owner="key1")
    dns.set("rebind.example", "127.0.0.1")  # the attacker's DNS changes its answer

    assert WebhookDispatcher(store, settings, policy).deliver_once()

    assert receiver.received == []
    assert store.webhook_state(1) == "PENDING"  # a counted try, retried with backoff (DNS may change back)
    assert "retrying" in store.logs(job_id)[-1].message
    assert dns.asked == ["rebind.example", "rebind.example"]


def test_a_delivery_connects_to_the_address_it_checked_and_keeps_the_host_name(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    # hooks.test does not exist: only the checked answer can have led the connection to the receiver.
    policy = EgressPolicy.from_setting("127.0.0.0/8", FakeDNS({"hooks.test": ("127.0.0.1",)}))
    cancelled_job(store, f"http://hooks.test:{receiver.server_address_port}/hook", owner="key1")

    assert WebhookDispatcher(store, settings, policy).deliver_once()

    ((headers, _),) = receiver.successes()
    assert headers["host"] == f"hooks.test:{receiver.server_address_port}"


def test_a_tls_delivery_sends_and_verifies_the_host_name_not_the_address(
    store: JobStore, settings: Settings, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "hooks.test")
    server_names: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    with tls_receiver(context) as (port, received):
        policy = EgressPolicy.from_setting("127.0.0.0/8", FakeDNS({"hooks.test": ("127.0.0.1",)}))
        cancelled_job(store, f"https://hooks.test:{port}/hook", owner="key1")
        trusted = ssl.create_default_context(cafile=str(cert))

        assert WebhookDispatcher(store, settings, policy, verify=trusted).deliver_once()

    assert store.webhook_state(1) == "DELIVERED"
    assert server_names == ["hooks.test"]
    assert received == [f"hooks.test:{port}"]


def test_without_api_keys_deliveries_are_signed_for_a_non_empty_user_id(
    receiver: Receiver, store: JobStore, settings: Settings
) -> None:
    job_id = finished_job(store, receiver.url, owner="")  # the owner of every request when no keys are set
    dispatcher = WebhookDispatcher(store, settings)

    assert dispatcher.deliver_once()

    ((headers, body),) = receiver.successes()
    assert headers["x-fal-webhook-user-id"] == "anonymous"
    assert headers["x-fal-webhook-request-id"] == job_id
    verify(dispatcher.jwks(), headers, body)


def test_the_jwks_x_is_padded_base64url_as_fals_key_set(settings: Settings) -> None:
    (jwk,) = WebhookSigner.load_or_create(settings.webhook_key_file).jwks()["keys"]

    assert len(jwk["x"]) == 44 and jwk["x"].endswith("=")
    assert len(base64.urlsafe_b64decode(jwk["x"])) == 32  # a plain decoder, as receivers written for fal use


def self_signed(out: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` that is its own trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@contextmanager
def tls_receiver(context: ssl.SSLContext) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS receiver on a free loopback port; yields the port and the Host header of each POST."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        try:
            yield server.server_address[1], hosts
        finally:
            server.shutdown()
