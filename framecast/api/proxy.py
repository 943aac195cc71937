"""fal's server-proxy contract: ``/api/fal/proxy`` + ``x-fal-target-url`` runs the targeted route in-process.

The JS client with ``proxyUrl: {url, when: "always"}`` sends every call here, naming the fal URL it meant
(``https://fal.run/...``, ``https://queue.fal.run/...``, or any host whose path is one of ours).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from framecast.api.errors import BadProxyTarget, framecast_error_response
from framecast.api.protocol import QUEUE_PREFIX, TARGET_URL_HEADER
from framecast.schema import APP_ID

PROXY_PATH = "/api/fal/proxy"
_OUR_PREFIXES = (f"/{APP_ID}/", f"{QUEUE_PREFIX}/{APP_ID}/")


def target_path(target_url: str | None) -> tuple[str, str]:
    """The local path and query string that a fal URL stands for; ``BadProxyTarget`` if it is not ours."""
    if not target_url:
        raise BadProxyTarget(f"Missing {TARGET_URL_HEADER} header")
    try:
        parts = urlsplit(target_url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        hostname = None
    if not hostname or parts.scheme not in ("http", "https"):
        raise BadProxyTarget(f"Invalid {TARGET_URL_HEADER}: {target_url!r} is not an absolute URL")
    # queue.fal.run/<app>/... is what we serve under /queue/<app>/...
    path = QUEUE_PREFIX + parts.path if hostname.startswith("queue.") else parts.path
    if not path.startswith(_OUR_PREFIXES):
        raise BadProxyTarget(f"Unsupported {TARGET_URL_HEADER}: this server only serves {APP_ID}")
    return path, parts.query


class FalProxy:
    """Rewrites a proxy call into the call it stands for, before routing: no HTTP hop, streams included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != PROXY_PATH:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        raw_target = headers.get(TARGET_URL_HEADER.encode())
        try:
            path, query = target_path(raw_target.decode("latin-1") if raw_target else None)
        except BadProxyTarget as exc:
            await framecast_error_response(exc)(scope, receive, send)
            return
        scope = {**scope, "path": path, "raw_path": path.encode(), "query_string": query.encode()}
        await self.app(scope, receive, send)
