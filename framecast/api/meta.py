"""Service routes: health, and the webhook signing keys as JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from framecast.schema import ENDPOINT_ID


def health(request: Request) -> dict[str, Any]:
    # `auth` lets the playground ask for a key up front instead of provoking a 401.
    return {"status": "ok", "endpoint": ENDPOINT_ID, "auth": request.app.state.settings.auth_enabled}


def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.webhooks.jwks()


def router() -> APIRouter:
    api = APIRouter(tags=["service"])
    api.add_api_route("/health", health, methods=["GET"], summary="Liveness")
    api.add_api_route(
        "/.well-known/jwks.json", jwks, methods=["GET"], summary="Public keys that verify webhook signatures"
    )
    return api
