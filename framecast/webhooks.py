"""Webhook delivery: drains the outbox, POSTs fal's payloads signed with Ed25519, retries with backoff.

The outbox row is written in the same transaction that completes the job, and a delivery is claimed under a
lease, so a server that dies mid-delivery delivers again after restart (at least once). Signing follows fal:
the message is ``request_id \\n user_id \\n timestamp \\n sha256_hex(body)``, the signature is hex, and the
public key is published as a JWKS (``jwks()``, served at ``/.well-known/jwks.json``).

Every try ends, within the webhook timeout, as delivered or as a failure that counts (with backoff, until the
attempts run out); a URL that can never be sent to fails at once. Each try connects only where the egress
policy allows (egress.py), checked again after DNS. The job's log, which its caller reads, says only that a try
failed: what the receiver answered, or that nothing listened, stays in the server's log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from framecast.config import Settings
from framecast.egress import EgressPolicy, Target, pinned, target
from framecast.errors import ConfigError, EgressRefused
from framecast.jobs.database import utcnow
from framecast.jobs.models import WebhookDelivery
from framecast.jobs.outbox import target_host
from framecast.jobs.store import JobStore

__all__ = ["WebhookDispatcher", "WebhookSigner", "signed_message", "webhook_body"]

logger = logging.getLogger(__name__)

ANONYMOUS_USER = "anonymous"  # X-Fal-Webhook-User-Id without API keys: receivers reject an empty one
MAX_ADDRESSES = 4  # of a host's addresses, how many a try connects to before it fails
MAX_REASON_CHARS = 500
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
        # Padded, as fal's key set is: receivers written for fal decode it with a plain base64url decoder.
        self._x = base64.urlsafe_b64encode(raw).decode("ascii")
        # RFC 7638 thumbprint (over the unpadded value): the key id is stable for as long as the key file is kept.
        thumbprint_input = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}, separators=(",", ":")
        )
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


@dataclass(frozen=True)
class Failure:
    """A try that did not deliver: ``reason`` is for the server's log only; ``permanent`` ends the delivery."""

    reason: str
    permanent: bool = False


class WebhookDispatcher:
    """Delivers due webhooks, many at once, from an event loop that the API process runs on a thread (``run``).

    Fairness: at most ``webhook_per_host`` deliveries in flight to one host, and half of them for one key's jobs,
    so receivers that never answer hold up only their own deliveries.
    """

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        policy: EgressPolicy | None = None,
        *,
        verify: ssl.SSLContext | bool = True,  # how receivers' certificates are checked (httpx's ``verify``)
    ) -> None:
        if settings.webhook_concurrency < 1 or settings.webhook_per_host < 1:
            raise ConfigError(
                "FRAMECAST_WEBHOOK_CONCURRENCY and FRAMECAST_WEBHOOK_PER_HOST must be at least 1"
            )
        self.store = store
        self.settings = settings
        self.policy = policy if policy is not None else EgressPolicy.from_setting(settings.webhook_allow)
        self.signer = WebhookSigner.load_or_create(settings.webhook_key_file)
        self.worker_id = f"webhooks-{socket.gethostname()}-{os.getpid()}"
        # A claim outlives the longest possible try, so a live sender is never doubled up.
        self.lease_seconds = settings.webhook_timeout_seconds + 30
        self.per_owner = max(1, settings.webhook_concurrency // 2)
        # Built once: loading the trust store costs more than a delivery to a receiver on the same network.
        self._ssl = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._hosts: Counter[str] = Counter()  # deliveries in flight, by target host and by job owner
        self._owners: Counter[str] = Counter()

    def jwks(self) -> dict[str, Any]:
        return self.signer.jwks()

    def run(self, stop_event: threading.Event) -> None:
        asyncio.run(self._run(stop_event))

    def deliver_once(self) -> bool:
        """Claim one due delivery, if any, and try it; returns whether there was one."""
        return asyncio.run(self._deliver_one())

    # 1. The loop: keep the pool full of due deliveries, else wait a poll interval or for a free slot.
    async def _run(self, stop_event: threading.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        async with self._client() as client:
            try:
                while not stop_event.is_set():
                    try:
                        claimed = await self._fill(client, tasks)
                    except Exception:
                        logger.exception("webhook dispatcher: cannot claim deliveries; retrying")
                        claimed = 0
                    if not claimed:
                        await self._pause(tasks)
            finally:
                # Their leases run out and another sender (or this one, restarted) delivers them.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _fill(self, client: httpx.AsyncClient, tasks: set[asyncio.Task[None]]) -> int:
        claimed = 0
        while len(tasks) < self.settings.webhook_concurrency:
            delivery = await self._claim()
            if delivery is None:
                break
            claimed += 1
            task = asyncio.create_task(self._deliver(client, delivery))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return claimed

    async def _pause(self, tasks: set[asyncio.Task[None]]) -> None:
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        else:
            await asyncio.sleep(self.settings.poll_seconds)

    async def _claim(self) -> WebhookDelivery | None:
        """The oldest due delivery not to a busy host or owner, counted as theirs at once (the counts live on the
        loop; the store is called on a thread)."""
        per_host = self.settings.webhook_per_host
        delivery = await asyncio.to_thread(
            partial(
                self.store.claim_webhook,
                self.worker_id,
                self.lease_seconds,
                busy_hosts={host for host, n in self._hosts.items() if n >= per_host},
                busy_owners={owner for owner, n in self._owners.items() if n >= self.per_owner},
            )
        )
        if delivery is not None:
            self._hosts[target_host(delivery.url)] += 1
            self._owners[delivery.job.owner] += 1
        return delivery

    async def _deliver_one(self) -> bool:
        async with self._client() as client:
            delivery = await self._claim()
            if delivery is None:
                return False
            await self._deliver(client, delivery)
            return True

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_seconds,
            # No redirect (it may point anywhere) and no proxy from the environment (it would connect for us, past
            # the address check). No kept-alive connection: one made for a host name is never reused for another
            # name on the same address, and each try connects to an address checked just before.
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            verify=self._ssl,
        )

    # 2. One try, counted against its host and owner until it is recorded.
    async def _deliver(self, client: httpx.AsyncClient, delivery: WebhookDelivery) -> None:
        try:
            failure = await self._attempt(client, delivery)
            await asyncio.to_thread(self._record, delivery, failure)
        except Exception:  # the delivery's boundary: the row's lease runs out and it is tried again
            logger.exception(
                "webhook %d: cannot record the outcome of attempt %d", delivery.id, delivery.attempt
            )
        finally:
            _release(self._hosts, target_host(delivery.url))
            _release(self._owners, delivery.job.owner)

    async def _attempt(self, client: httpx.AsyncClient, delivery: WebhookDelivery) -> Failure | None:
        try:
            checked = target(delivery.url)
        except EgressRefused as exc:  # e.g. a row written by a release that did not check URLs
            return Failure(f"invalid URL ({exc.reason})", permanent=True)
        try:
            return await asyncio.wait_for(
                self._post(client, delivery, checked), self.settings.webhook_timeout_seconds
            )
        except asyncio.TimeoutError:
            return Failure("timed out")
        except EgressRefused as exc:
            return Failure(f"refused by the egress policy: {exc.reason}")
        except httpx.HTTPError as exc:
            return Failure(f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # every error is a counted try, never a row retried for ever
            logger.exception("webhook %d: unexpected error", delivery.id)
            return Failure(f"{type(exc).__name__}: {exc}")

    async def _post(
        self, client: httpx.AsyncClient, delivery: WebhookDelivery, checked: Target
    ) -> Failure | None:
        """POST to the target's addresses in turn (the next only if connecting fails), each checked after DNS."""
        body, headers = self._signed(delivery)
        addresses = (await asyncio.to_thread(self.policy.addresses, checked))[:MAX_ADDRESSES]
        for index, address in enumerate(addresses):
            url, host_header, extensions = pinned(checked, address)
            try:
                # Streamed and never read: a receiver's answer body is not ours to buffer.
                async with client.stream(
                    "POST", url, content=body, headers={**headers, **host_header}, extensions=extensions
                ) as response:
                    return None if response.is_success else Failure(f"HTTP {response.status_code}")
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise
        raise AssertionError("addresses() returns at least one address")

    def _signed(self, delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
        job = delivery.job
        body = webhook_body(delivery)
        timestamp = str(int(time.time()))
        user_id = job.owner or ANONYMOUS_USER
        return body, {
            "Content-Type": "application/json",
            "X-Fal-Webhook-Request-Id": job.id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": timestamp,
            "X-Fal-Webhook-Signature": self.signer.sign(job.id, user_id, timestamp, body),
        }

    # 3. The outcome, in the outbox and in the job's log (which its caller reads: no receiver detail there).
    def _record(self, delivery: WebhookDelivery, failure: Failure | None) -> None:
        job_id, attempt, attempts = delivery.job.id, delivery.attempt, self.settings.webhook_attempts
        if failure is None:
            self.store.webhook_delivered(delivery.id)
            self.store.append_log(job_id, f"Webhook delivered (attempt {attempt}).", "DEBUG")
            return
        reason = failure.reason[:MAX_REASON_CHARS]
        logger.warning(
            "webhook %d for %s to %s: attempt %d of %d failed: %s",
            delivery.id,
            job_id,
            target_host(delivery.url) or "?",
            attempt,
            attempts,
            reason,
        )
        if failure.permanent:
            self.store.webhook_give_up(delivery.id, reason)
            self.store.append_log(job_id, "Webhook URL cannot be delivered to; giving up.", "ERROR")
        elif attempt >= attempts:
            self.store.webhook_give_up(delivery.id, reason)
            self.store.append_log(job_id, f"Webhook delivery failed {attempts} times; giving up.", "ERROR")
        else:
            delay = self._backoff(attempt)
            self.store.webhook_retry(delivery.id, reason, utcnow() + timedelta(seconds=delay))
            self.store.append_log(
                job_id,
                f"Webhook delivery failed (attempt {attempt} of {attempts}); retrying in {delay:g} s.",
                "WARN",
            )

    def _backoff(self, attempt: int) -> float:
        backoff = self.settings.webhook_backoff_seconds
        return backoff[min(attempt, len(backoff)) - 1] if backoff else 0.0


def _release(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]
