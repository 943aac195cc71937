"""One JSON access-log line per request (with ``FRAMECAST_LOG_FORMAT=json``), and the request's state bound to
the logging context so every line logged while serving it carries its request id."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framecast.api.middleware import REQUEST_ID_STATE
from framecast.logs import request_state

logger = logging.getLogger("framecast.access")


class AccessLog:
    """Inside ``RequestBoundary``: names a fresh request id up front (a handler may replace it with its job's),
    so log lines and the ``x-fal-request-id`` the boundary answers with agree."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state.setdefault(REQUEST_ID_STATE, str(uuid.uuid4()))
        token = request_state.set(state)
        started = time.monotonic()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            logger.info(
                "%s %s %s",
                scope.get("method"),
                scope.get("path"),
                status or "-",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status or None,
                    "duration_ms": round(1000 * (time.monotonic() - started), 2),
                },
            )
            request_state.reset(token)
