"""Request-scoped values the routers depend on, all read from ``app.state`` (built by ``create_app``).

Coroutines on purpose: they never block, and FastAPI would run a plain function on the thread pool, one hop
each, on the hot status path.
"""

from __future__ import annotations

from fastapi import Request

from framecast.api.auth import Principal
from framecast.api.service import RequestService
from framecast.api.stream import StreamSlots


async def service(request: Request) -> RequestService:
    return request.app.state.service


async def principal(request: Request) -> Principal:
    return request.app.state.key_checker(request.headers.get("authorization"))


async def base_url(request: Request) -> str:
    """Where clients reach us: FRAMECAST_PUBLIC_URL, else the host this request was sent to."""
    return request.app.state.settings.public_url or str(request.base_url).rstrip("/")


async def stream_slots(request: Request) -> StreamSlots:
    return request.app.state.stream_slots
