"""ASGI middleware at the request boundary: request ids on every response, the catch-all, the body limit."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from framecast.api.errors import BodyTooLarge, error_response, framecast_error_response
from framecast.api.protocol import REQUEST_ID_HEADER

logger = logging.getLogger(__name__)

REQUEST_ID_STATE = "fal_request_id"


def set_request_id(scope_or_request: Any, request_id: str) -> None:
    """Name the job this response is about; the boundary writes it into ``x-fal-request-id``."""
    state = (
        scope_or_request.scope["state"] if hasattr(scope_or_request, "scope") else scope_or_request["state"]
    )
    state[REQUEST_ID_STATE] = request_id


def _valid_uuid(text: str | None) -> str | None:
    # A handler names the id from the path before checking it: an id that is not a UUID (control characters
    # included) must not reach a response header.
    try:
        return str(uuid.UUID(text)) if text else None
    except ValueError:
        return None


class RequestBoundary:
    """Outermost layer: every response gets ``x-fal-request-id``; an unexpected error is a logged 500.

    The id is the job's when a handler named one (submit, status, result...), else a fresh UUID4.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                request_id = _valid_uuid(state.get(REQUEST_ID_STATE)) or str(uuid.uuid4())
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-fal-request-id"]
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            pass  # the client went, or the connection guard dropped it (a body too slow): nobody to answer
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = error_response(500, "Internal server error", "internal_error")
                await response(scope, receive, send_with_id)


class BodyLimit:
    """Refuse bodies over ``max_bytes``: at once by Content-Length, else while the body streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await framecast_error_response(self._too_large())(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> BodyTooLarge:
        return BodyTooLarge(f"Request body is larger than {self.max_bytes} bytes")
