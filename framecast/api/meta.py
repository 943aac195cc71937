"""Service routes: health, and the webhook signing keys as JWKS."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from framecast.schema import ENDPOINT_ID


def health() -> dict[str, str]:
    return {"status": "ok", "endpoint": ENDPOINT_ID}


def jwks(request: Request) -> dict[str, Any]:
    return request.app.state.webhooks.jwks()


def router() -> APIRouter:
    api = APIRouter(tags=["service"])
    api.add_api_route("/health", health, methods=["GET"], summary="Liveness")
    api.add_api_route(
        "/.well-known/jwks.json", jwks, methods=["GET"], summary="Public keys that verify webhook signatures"
    )
    return api
