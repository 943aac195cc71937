"""Webhook delivery: drains the outbox, POSTs fal's payloads signed with Ed25519, retries with backoff.

The outbox row is written in the same transaction that completes the job, and a delivery is claimed under a
lease, so a server that dies mid-delivery delivers again after restart (at least once). Signing follows fal:
the message is ``request_id \\n user_id \\n timestamp \\n sha256_hex(body)``, the signature is hex, and the
public key is published as a JWKS (``jwks()``, served at ``/.well-known/jwks.json``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from framecast.config import Settings
from framecast.jobs.database import utcnow
from framecast.jobs.models import WebhookDelivery
from framecast.jobs.store import JobStore

__all__ = ["WebhookDispatcher", "WebhookSigner", "signed_message", "webhook_body"]

logger = logging.getLogger(__name__)

PAYLOAD_ERROR = (
    "Response payload is not JSON serializable. Either return a JSON serializable object or use the queue "
    "endpoint to retrieve the response."
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    return "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode("utf-8")


class WebhookSigner:
    """The server's Ed25519 key: created once, kept in a 0600 PEM file, published as a JWK."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._x = _b64url(raw)
        # RFC 7638 thumbprint: the key id is stable for as long as the key file is kept.
        thumbprint_input = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": self._x}, separators=(",", ":"))
        self.kid = _b64url(hashlib.sha256(thumbprint_input.encode()).digest())

    @classmethod
    def load_or_create(cls, path: str | Path) -> WebhookSigner:
        path = Path(path)
        if not path.exists():
            _write_new_key(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    def sign(self, request_id: str, user_id: str, timestamp: str, body: bytes) -> str:
        return self._key.sign(signed_message(request_id, user_id, timestamp, body)).hex()

    def jwks(self) -> dict[str, Any]:
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": self._x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}
        return {"keys": [jwk]}


def _write_new_key(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first: use theirs
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def webhook_body(delivery: WebhookDelivery) -> bytes:
    """fal's webhook payload: ``status`` OK with the output, or ERROR with the error body."""
    job = delivery.job
    body: dict[str, Any] = {"request_id": job.id, "gateway_request_id": job.id}
    if job.error is None:
        body.update(status="OK", payload=delivery.payload)
    else:
        body.update(
            status="ERROR",
            error=f"Invalid status code: {job.error_status}",
            payload={"detail": job.error, "error_type": job.error_type},
        )
    try:
        return json.dumps(body, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):
        body.update(payload=None, payload_error=PAYLOAD_ERROR)
        return json.dumps(body).encode("utf-8")


class WebhookDispatcher:
    """Delivers due webhooks one at a time; the API process runs ``run`` on a thread."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.signer = WebhookSigner.load_or_create(settings.webhook_key_file)
        self.worker_id = f"webhooks-{socket.gethostname()}-{os.getpid()}"
        # A claim outlives the slowest possible POST, so a live sender is never doubled up.
        self.lease_seconds = settings.webhook_timeout_seconds + 30

    def jwks(self) -> dict[str, Any]:
        return self.signer.jwks()

    def run(self, stop_event: threading.Event) -> None:
        with httpx.Client(timeout=self.settings.webhook_timeout_seconds) as client:
            while not stop_event.is_set():
                try:
                    delivered = self.deliver_once(client)
                except Exception:
                    logger.exception("webhook dispatcher: unexpected error")
                    delivered = False
                if not delivered:
                    stop_event.wait(self.settings.poll_seconds)

    def deliver_once(self, client: httpx.Client | None = None) -> bool:
        """Send one due delivery, if any; returns whether there was one."""
        delivery = self.store.claim_webhook(self.worker_id, self.lease_seconds)
        if delivery is None:
            return False
        if client is None:
            with httpx.Client(timeout=self.settings.webhook_timeout_seconds) as own:
                self._send(own, delivery)
        else:
            self._send(client, delivery)
        return True

    def _send(self, client: httpx.Client, delivery: WebhookDelivery) -> None:
        job = delivery.job
        body = webhook_body(delivery)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": job.id,
            "X-Fal-Webhook-User-Id": job.owner,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.signer.sign(job.id, job.owner, timestamp, body),
        }
        try:
            response = client.post(delivery.url, content=body, headers=headers)
            error = None if response.is_success else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.store.webhook_delivered(delivery.id)
            self.store.append_log(job.id, f"Webhook delivered (attempt {delivery.attempt}).", "DEBUG")
        else:
            self._failed(delivery, error)

    def _failed(self, delivery: WebhookDelivery, error: str) -> None:
        attempts = self.settings.webhook_attempts
        if delivery.attempt >= attempts:
            logger.warning("webhook for %s failed %d times, giving up: %s", delivery.job.id, attempts, error)
            self.store.webhook_give_up(delivery.id, error)
            self.store.append_log(
                delivery.job.id, f"Webhook delivery failed {attempts} times; giving up: {error}", "ERROR"
            )
            return
        backoff = self.settings.webhook_backoff_seconds
        delay = backoff[min(delivery.attempt, len(backoff)) - 1] if backoff else 0.0
        self.store.webhook_retry(delivery.id, error, utcnow() + timedelta(seconds=delay))
        self.store.append_log(
            delivery.job.id,
            f"Webhook delivery {delivery.attempt} of {attempts} failed ({error}); retrying in {delay:g} s.",
            "WARN",
        )
