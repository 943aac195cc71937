"""``create_app(settings)``: the whole HTTP API assembled from explicit parts, no globals.

Importing this module loads no model code: the API process starts fast and runs on machines without a GPU.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from framecast.api import files, meta, metrics, playground, queue, sync
from framecast.api.access_log import AccessLog
from framecast.api.auth import KeyChecker
from framecast.api.errors import install_error_handlers
from framecast.api.metrics import ApiMetrics
from framecast.api.middleware import BodyLimit, RequestBoundary
from framecast.api.openapi import openapi_for
from framecast.api.protocol import REQUEST_ID_HEADER
from framecast.api.proxy import FalProxy
from framecast.api.service import RequestService
from framecast.api.stream import StreamSlots
from framecast.config import Settings
from framecast.egress import EgressPolicy
from framecast.housekeeping import delete_expired
from framecast.jobs.retry import StoreRetry, is_transient
from framecast.jobs.store import JobStore
from framecast.schema import ENDPOINT_ID
from framecast.storage import Storage, storage_for
from framecast.webhooks import WebhookDispatcher

logger = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 1.0
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def create_app(
    settings: Settings,
    store: JobStore | None = None,
    storage: Storage | None = None,
    egress: EgressPolicy | None = None,
) -> FastAPI:
    # 1. Collaborators: the ones passed in belong to the caller, the ones opened here to the app.
    owns_store = store is None
    store = store or JobStore.from_settings(settings)
    storage = storage or storage_for(settings)
    egress = egress or EgressPolicy.from_setting(settings.webhook_allow)
    webhooks = WebhookDispatcher(store, settings, egress)

    # 2. The app and its state.
    app = FastAPI(
        title="Framecast",
        version="0.1.0",
        summary=f"Self-hosted {ENDPOINT_ID}, speaking fal.ai's HTTP protocol",
        lifespan=_lifespan(store, storage, webhooks, owns_store, settings.retention_days),
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.storage = storage
    app.state.webhooks = webhooks
    app.state.service = RequestService(
        store, settings.sync_timeout_seconds, egress, position_max_age=settings.queue_position_seconds
    )
    app.state.stream_slots = StreamSlots(settings.max_streams)
    app.state.metrics = ApiMetrics(store, settings, lambda: app.state.stream_slots.active)
    app.state.key_checker = KeyChecker(settings.api_keys)

    # 3. Routes, errors, and the layers around them (the last added is the outermost).
    for module in (sync, queue, files, meta, metrics):
        app.include_router(module.router())
    install_error_handlers(app)
    app.include_router(playground.router(STATIC_DIR))
    app.add_middleware(FalProxy)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestBoundary)
    if settings.log_format == "json":  # inside the boundary: it sees the request id the boundary answers with
        app.add_middleware(AccessLog)
    if settings.cors_origins:  # browsers on other origins (a web app calling the API directly)
        app.add_middleware(
            CORSMiddleware,
            allow_origins=[o.strip() for o in settings.cors_origins.split(",") if o.strip()],
            allow_methods=["GET", "HEAD", "POST", "PUT", "OPTIONS"],
            allow_headers=["*"],  # Authorization, Content-Type and fal's X-Fal-* headers
            expose_headers=[REQUEST_ID_HEADER, "Content-Range", "Accept-Ranges", "Content-Length"],
            max_age=600,
        )
    app.openapi = openapi_for(app)  # type: ignore[method-assign]
    return app


def _lifespan(
    store: JobStore, storage: Storage, webhooks: WebhookDispatcher, owns_store: bool, retention_days: float
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        threads = [
            threading.Thread(target=webhooks.run, args=(stop,), name="webhooks", daemon=True),
            threading.Thread(
                target=_housekeeping,
                args=(store, storage, retention_days, stop),
                name="housekeeping",
                daemon=True,
            ),
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
            if owns_store:
                store.close()

    return lifespan


def _housekeeping(store: JobStore, storage: Storage, retention_days: float, stop: threading.Event) -> None:
    """Ends requests past their X-Fal-Request-Timeout, recovers lost leases, deletes expired and orphaned files
    and requests past retention (housekeeping.py)."""
    outage = StoreRetry(0.0, logger)  # no waiting here (the loop retries each second): only its outage log
    while not stop.wait(HOUSEKEEPING_SECONDS):
        try:
            outage(store.reap)
            outage(delete_expired, store, storage, retention_days)
        except Exception as exc:
            if not is_transient(exc):  # an outage was logged once by StoreRetry
                logger.exception("housekeeping failed; retrying")
