"""The webhook outbox: a row per finished job with a webhook, written in the transaction that finished it.

Deliveries are claimed under a lease, so a sender that dies mid-delivery leaves a row that is due again when
its lease ends (at-least-once delivery). A sender names the hosts and owners that already have their share of its
deliveries in flight, and the claim passes over their rows: a receiver that never answers holds up only its own.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, func, insert, or_, select, update

from framecast.jobs.database import Database, utcnow
from framecast.jobs.models import WebhookDelivery
from framecast.jobs.tables import jobs, load_job, webhooks

CANDIDATES = 32  # due rows read per claim: enough to step past rows of busy hosts that the SQL filter missed


def target_host(url: str) -> str:
    """The host a delivery goes to: the unit of per-host fairness (``""`` when the URL has none)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""


def _lease_free(now: datetime) -> Any:
    return or_(webhooks.c.lease_expires_at.is_(None), webhooks.c.lease_expires_at < now)


def _to_host(host: str) -> Any:
    """Rows whose URL goes to ``host``, as a URL is spelt after submit's checks (scheme://host[:port][/?#])."""
    netloc = f"[{host}]" if ":" in host else host
    url = func.lower(webhooks.c.url)
    bases = [f"{scheme}://{netloc}" for scheme in ("http", "https")]
    return or_(
        url.in_(bases),
        *(url.startswith(base + end, autoescape=True) for base in bases for end in "/:?#"),
    )


class WebhookOutbox(Database):
    def claim_webhook(
        self,
        worker_id: str,
        lease_seconds: float,
        *,
        busy_hosts: Collection[str] = (),
        busy_owners: Collection[str] = (),
    ) -> WebhookDelivery | None:
        """Take the oldest due delivery under a lease, skipping those to ``busy_hosts`` and of ``busy_owners``'
        jobs (the sender's fairness); if its sender dies mid-delivery it is due again at lease end."""
        if not self._exists(select(webhooks.c.id).where(webhooks.c.state == "PENDING")):
            return None
        now = utcnow()
        # 1. Candidates, oldest first. Filtering busy hosts in SQL keeps a host with thousands of due rows from
        #    filling every page; the exact check on each URL is the one below.
        query = (
            select(webhooks.c.id, webhooks.c.url, webhooks.c.attempts)
            .join(jobs, jobs.c.id == webhooks.c.job_id)
            .where(webhooks.c.state == "PENDING", webhooks.c.next_at <= now, _lease_free(now))
            .order_by(webhooks.c.next_at, webhooks.c.id)
            .limit(CANDIDATES)
        )
        if busy_owners:
            query = query.where(jobs.c.owner.not_in(list(busy_owners)))
        if busy_hosts:
            query = query.where(~or_(*(_to_host(host) for host in busy_hosts)))
        with self._read() as conn:
            candidates = conn.execute(query).all()
        # 2. The first one not to a busy host that no other sender took meanwhile (the attempts guard).
        for row in candidates:
            if target_host(row.url) in busy_hosts:
                continue
            delivery = self._take_webhook(row, worker_id, lease_seconds)
            if delivery is not None:
                return delivery
        return None

    def _take_webhook(self, row: Any, worker_id: str, lease_seconds: float) -> WebhookDelivery | None:
        with self._write() as conn:
            now = utcnow()
            result = conn.execute(
                update(webhooks)
                .where(
                    webhooks.c.id == row.id,
                    webhooks.c.attempts == row.attempts,
                    webhooks.c.state == "PENDING",
                    _lease_free(now),
                )
                .values(
                    attempts=row.attempts + 1,
                    worker_id=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                )
            )
            if result.rowcount != 1:
                return None
            payload = conn.execute(
                select(webhooks.c.job_id, webhooks.c.payload).where(webhooks.c.id == row.id)
            )
            job_id, body = payload.one()
            job = load_job(conn, job_id)
            assert job is not None, "an outbox row always has its job"
            return WebhookDelivery(id=row.id, job=job, url=row.url, payload=body, attempt=row.attempts + 1)

    def webhook_delivered(self, delivery_id: int) -> None:
        self._end_webhook(delivery_id, "DELIVERED", None)

    def webhook_retry(self, delivery_id: int, error: str, next_at: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == delivery_id)
                .values(next_at=next_at, last_error=error, lease_expires_at=None, worker_id=None)
            )

    def webhook_give_up(self, delivery_id: int, error: str) -> None:
        self._end_webhook(delivery_id, "FAILED", error)

    def webhook_state(self, delivery_id: int) -> str | None:
        with self._read() as conn:
            return conn.execute(select(webhooks.c.state).where(webhooks.c.id == delivery_id)).scalar()

    def _end_webhook(self, delivery_id: int, state: str, error: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                update(webhooks)
                .where(webhooks.c.id == delivery_id)
                .values(
                    state=state,
                    payload=None,
                    last_error=error,
                    lease_expires_at=None,
                    delivered_at=utcnow() if state == "DELIVERED" else None,
                )
            )

    def _queue_webhook(
        self, conn: Connection, job_id: str, url: str, payload: dict[str, Any] | None, now: datetime
    ) -> None:
        conn.execute(
            insert(webhooks).values(
                job_id=job_id,
                url=url,
                payload=payload,
                state="PENDING",
                attempts=0,
                next_at=now,
                created_at=now,
            )
        )
