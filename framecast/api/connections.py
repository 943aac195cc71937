"""Connection limits below the app: what one slow or hostile client can hold of the server.

uvicorn's default HTTP protocol (httptools) reads a request head of any size and waits for ever for a head or
a body, so one connection can hold megabytes and a few hundred slow ones every file descriptor.
``GuardedHttpToolsProtocol`` is that protocol with, per connection:

1. a head size limit (``max_header_bytes``): past it, 431 and close. The head is parsed in pieces of
   ``HEAD_PIECE`` bytes, so no more than the limit and one piece is ever buffered;
2. a head deadline (``header_timeout``), from the moment the connection is ready for a request (opened, or its
   last answer sent) to the end of the head, and a body deadline (``body_timeout``) from there to the end of the
   body. Past either: 408 and close (a connection that sent nothing is just closed);
3. a cap on open connections (``max_connections``, kept below the file descriptor limit): a new connection past
   it displaces the one that has waited longest for a request head, else it is answered 503.

Answers written here have fal's error shape, as the app's do. ``uvicorn_config`` builds the server with it.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import resource
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from framecast.config import Settings
from framecast.errors import ConfigError

logger = logging.getLogger(__name__)

HEAD_PIECE = 4096
# Descriptors left for everything but client connections: the database, storage, logs, workers' pipes and the
# webhook sender's connections.
FD_RESERVE = 128
BUSY_RETRY_AFTER_SECONDS = 1
LINGER_SECONDS = 2.0


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        values = (
            settings.max_header_bytes,
            settings.header_timeout_seconds,
            settings.body_timeout_seconds,
            settings.max_connections,
        )
        if min(values) <= 0:
            raise ConfigError(
                "FRAMECAST_MAX_HEADER_BYTES, FRAMECAST_HEADER_TIMEOUT_SECONDS, FRAMECAST_BODY_TIMEOUT_SECONDS "
                "and FRAMECAST_MAX_CONNECTIONS must be positive"
            )
        return cls(*values[:3], connection_cap(settings.max_connections))


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered if need be to leave ``FD_RESERVE`` descriptors of this process's limit free: at the
    limit, accept() fails and the server stops answering anyone, ``/health`` included."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted <= soft - FD_RESERVE:
        return wanted
    cap = max(1, soft - FD_RESERVE)
    logger.info("at most %d connections: the file descriptor limit is %d", cap, soft)
    return cap


def error_bytes(
    status: int, detail: str, error_type: str, headers: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """A complete ``Connection: close`` response in fal's error shape, for answers below the app."""
    body = json.dumps({"detail": detail, "error_type": error_type}).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        f"x-fal-error-type: {error_type}",
        f"x-fal-request-id: {uuid.uuid4()}",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Phase(enum.Enum):
    READY = "ready"  # waiting for a request head, or for the rest of one
    BODY = "body"  # the head is in, the body is arriving
    APP = "app"  # the request is in; the app is answering it
    REFUSED = "refused"  # answered here: input is read and dropped until the client or LINGER_SECONDS ends it


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; ``limits`` is set on the subclass ``guarded`` makes."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = Phase.READY
        self._head_bytes = 0
        self._waiting_since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    # Connection events.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._ready()
        self._admit()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is Phase.REFUSED:
            return
        offset = 0
        while offset < len(data) and self._phase is Phase.READY:
            piece = data[offset : offset + HEAD_PIECE]
            offset += len(piece)
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
            if self._phase is Phase.READY and self._head_bytes > self.limits.max_header_bytes:
                detail = f"Request line and headers are larger than {self.limits.max_header_bytes} bytes"
                self._refuse(431, detail, "request_header_too_large")
                return
        if offset < len(data):
            super().data_received(data[offset:])

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and self._phase is Phase.APP and not self.transport.is_closing():
            self._ready()

    # Parser callbacks (httptools calls them during ``data_received``).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is Phase.APP:  # a pipelined request begins while the last one is being answered
            self._ready()

    def on_headers_complete(self) -> None:
        self._phase = Phase.BODY
        self._arm(self.limits.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        answered = self.cycle is not None and self.cycle.response_complete and not self.pipeline
        if answered:  # answered before its body ended (413, 401...): ready for the next request now
            self._ready()
        else:
            self._phase = Phase.APP

    # The limits.
    def _ready(self) -> None:
        self._phase = Phase.READY
        self._head_bytes = 0
        self._waiting_since = self.loop.time()
        self._arm(self.limits.header_timeout, self._head_late)

    def _admit(self) -> None:
        """Past the cap, make room: close the connection that has waited longest for a head (a slow or idle
        client), else refuse this one."""
        if len(self.connections) <= self.limits.max_connections:
            return
        waiting = (
            c
            for c in self.connections
            if isinstance(c, GuardedHttpToolsProtocol)
            and c is not self
            and c._phase is Phase.READY
            and not c.transport.is_closing()
        )
        oldest = min(waiting, key=lambda c: c._waiting_since, default=None)
        if oldest is not None:
            oldest._close()
            return
        retry = (("retry-after", str(BUSY_RETRY_AFTER_SECONDS)),)
        self.transport.write(
            error_bytes(503, "Too many open connections; try again shortly", "too_many_connections", retry)
        )
        self._close()  # at once, not lingering: descriptors are what is short

    def _head_late(self) -> None:
        if self._head_bytes == 0:
            self._close()  # an idle keep-alive or preconnected socket: nothing to answer
        else:
            self._refuse(408, "Request headers not received in time", "request_header_timeout")

    def _body_late(self) -> None:
        if self.cycle is not None and self.cycle.response_started:
            self._close()
        else:
            self._refuse(408, "Request body not received in time", "request_body_timeout")

    def _refuse(self, status: int, detail: str, error_type: str) -> None:
        """Answer, then close once the client has read it. Closing with its input unread would reset the
        connection and lose the answer, so input is dropped for a while first (a lingering close)."""
        self.transport.write(error_bytes(status, detail, error_type))
        self._phase = Phase.REFUSED
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app, if it is reading this request, sees the client gone
            self.cycle.message_event.set()
        if not self.transport.can_write_eof():  # TLS
            self._close()
            return
        self.transport.write_eof()
        self.flow.resume_reading()
        self._arm(LINGER_SECONDS, self._close)

    def _close(self) -> None:
        self._disarm()
        self.transport.close()

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def guarded(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """The server for ``app``: where ``settings`` say, with the connection limits; ``options`` add uvicorn's."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=settings.ssl_certfile or None,
        ssl_keyfile=settings.ssl_keyfile or None,
        http=guarded(ConnectionLimits.from_settings(settings)),
        ws="none",  # no WebSocket routes: an upgrade request is answered as plain HTTP
        **{"log_level": settings.log_level, **options},
    )
