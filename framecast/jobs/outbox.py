"""The webhook outbox: a row per finished job with a webhook, written in the transaction that finished it.

Deliveries are claimed under a lease, so a sender that dies mid-delivery leaves a row that is due again when
its lease ends (at-least-once delivery).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from framecast.jobs.database import Database, utcnow
from framecast.jobs.models import WebhookDelivery
from framecast.jobs.tables import load_job, webhooks


class WebhookOutbox(Database):
    def claim_webhook(self, worker_id: str, lease_seconds: float) -> WebhookDelivery | None:
        """Take one due delivery under a lease; if its sender dies mid-delivery it is due at lease end."""
        if not self._exists(select(webhooks.c.id).where(webhooks.c.state == "PENDING")):
            return None
        with self._write() as conn:
            now = utcnow()
            query = (
                select(webhooks)
                .where(
                    webhooks.c.state == "PENDING",
                    webhooks.c.next_at <= now,
                    or_(webhooks.c.lease_expires_at.is_(None), webhooks.c.lease_expires_at < now),
                )
                .order_by(webhooks.c.next_at, webhooks.c.id)
                .limit(1)
            )
            row = conn.execute(self.lock_rows(query)).first()
            if row is None:
                return None
            result = conn.execute(
                update(webhooks)
                .where(webhooks.c.id == row.id, webhooks.c.attempts == row.attempts)
                .values(
                    attempts=row.attempts + 1,
                    worker_id=worker_id,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                )
            )
            if result.rowcount != 1:
                return None
            job = load_job(conn, row.job_id)
            assert job is not None, "an outbox row always has its job"
            return WebhookDelivery(
                id=row.id, job=job, url=row.url, payload=row.payload, attempt=row.attempts + 1
            )

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
