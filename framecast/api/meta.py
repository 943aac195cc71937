"""Service routes: liveness (``/health``), readiness (``/health/ready``), and the webhook signing keys as JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from framecast.api.errors import DATABASE_RETRY_AFTER
from framecast.jobs.retry import describe, is_transient
from framecast.schema import ENDPOINT_ID


def health(request: Request) -> dict[str, Any]:
    """Liveness: the process answers. Touches nothing else, so a database outage never restarts the API."""
    # `auth` lets the playground ask for a key up front instead of provoking a 401.
    return {"status": "ok", "endpoint": ENDPOINT_ID, "auth": request.app.state.settings.auth_enabled}


async def ready(request: Request) -> JSONResponse:
    """Readiness: the job database answers a query. 503 with Retry-After while it does not (a load balancer
    then sends traffic elsewhere)."""
    body: dict[str, Any] = {"status": "ok", "endpoint": ENDPOINT_ID, "database": "ok"}
    try:
        await run_in_threadpool(request.app.state.store.ping)
    except Exception as exc:
        if not is_transient(exc):
            raise
        body.update(status="unavailable", database="unreachable", detail=describe(exc))
        return JSONResponse(body, 503, headers={"retry-after": str(DATABASE_RETRY_AFTER)})
    return JSONResponse(body)


def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.webhooks.jwks()


def router() -> APIRouter:
    api = APIRouter(tags=["service"])
    api.add_api_route("/health", health, methods=["GET"], summary="Liveness")
    api.add_api_route(
        "/health/ready",
        ready,
        methods=["GET"],
        summary="Readiness: the job database answers",
        responses={503: {"description": "the job database is unreachable (with Retry-After)"}},
    )
    api.add_api_route(
        "/.well-known/jwks.json", jwks, methods=["GET"], summary="Public keys that verify webhook signatures"
    )
    return api
