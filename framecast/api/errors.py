"""HTTP errors of the API, and the one table that turns every ``FramecastError`` into a fal-shaped response.

FramecastError                        (framecast.errors)
 ├── InputError ── RequestInvalid      422 {"detail": [pydantic-style items]}
 │               ├── BodyTooLarge      413
 │               ├── UnsupportedMedia  415
 │               └── BadProxyTarget    400
 ├── AuthError                         401 (ForbiddenError 403)
 ├── NotFoundError                     404
 ├── RequestNotFinished                400 "Request is still in progress", as fal answers
 ├── ResultGone                        410 the payload was dropped (X-Fal-Store-IO: 0) after delivery
 ├── RequestTimedOut                   504 + X-Fal-Request-Timeout-Type: user
 ├── TooManyStreams                    503 + Retry-After: FRAMECAST_MAX_STREAMS status streams are open
 ├── QueueFull                         429 + Retry-After (a queue limit)
 ├── OutOfSpace                        507 + Retry-After (the server's disk is full)
 └── anything else                     500 (ModelUnavailableError 503)
The job database unreachable (SQLAlchemy's OperationalError and kin) 503 + Retry-After; full, 507.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from framecast.errors import (
    AuthError,
    ConfigError,
    ForbiddenError,
    FramecastError,
    InputError,
    ModelUnavailableError,
    NotFoundError,
    OutOfSpace,
    QueueFull,
)
from framecast.jobs.retry import describe, is_disk_full, is_transient

logger = logging.getLogger(__name__)

ERROR_TYPE_HEADER = "x-fal-error-type"
REQUEST_TIMEOUT_TYPE_HEADER = "x-fal-request-timeout-type"
DATABASE_RETRY_AFTER = 5  # seconds: a database restart or failover usually takes about that
OUT_OF_SPACE_RETRY_AFTER = 60
DATABASE_UNAVAILABLE = "The job database is unreachable; retry shortly"


class RequestInvalid(InputError):
    """A request that fails validation; ``errors`` are pydantic-style, ``loc`` from body/query/header."""

    error_type = "validation_error"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"] if errors else "invalid request")
        self.errors = errors


class BodyTooLarge(InputError):
    error_type = "payload_too_large"


class UnsupportedMedia(InputError):
    error_type = "unsupported_media_type"


class BadProxyTarget(InputError):
    error_type = "invalid_proxy_target"


class RequestNotFinished(FramecastError):
    error_type = "request_in_progress"


class ResultGone(FramecastError):
    error_type = "result_not_stored"


class RequestTimedOut(FramecastError):
    error_type = "request_timeout"


class TooManyStreams(FramecastError):
    error_type = "too_many_streams"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Most specific first: the first class an error is an instance of decides its status.
_STATUS: tuple[tuple[type[FramecastError], int], ...] = (
    (RequestInvalid, 422),
    (BodyTooLarge, 413),
    (UnsupportedMedia, 415),
    (BadProxyTarget, 400),
    (InputError, 422),
    (ForbiddenError, 403),
    (AuthError, 401),
    (NotFoundError, 404),
    (RequestNotFinished, 400),
    (ResultGone, 410),
    (RequestTimedOut, 504),
    (TooManyStreams, 503),
    (ModelUnavailableError, 503),
    (QueueFull, 429),
    (OutOfSpace, 507),
    (ConfigError, 500),
)


def status_of(exc: FramecastError) -> int:
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def error_response(
    status_code: int, detail: Any, error_type: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The one constructor of an error response: fal's body, ``X-Fal-Error-Type``, and the timeout marker."""
    all_headers = dict(headers or {})
    if error_type:
        all_headers[ERROR_TYPE_HEADER] = error_type
    if status_code == 504 and error_type == "request_timeout":
        # Marks the timeout as the user's, so neither official client retries (and re-submits) it.
        all_headers[REQUEST_TIMEOUT_TYPE_HEADER] = "user"
    return JSONResponse({"detail": detail, "error_type": error_type}, status_code, headers=all_headers)


def validation_response(errors: list[dict[str, Any]]) -> JSONResponse:
    # FastAPI's own shape, exactly: no error_type key next to the list.
    return JSONResponse(
        {"detail": [_jsonable_error(e) for e in errors]}, 422, headers={ERROR_TYPE_HEADER: "validation_error"}
    )


def framecast_error_response(exc: FramecastError) -> JSONResponse:
    if isinstance(exc, RequestInvalid):
        return validation_response(exc.errors)
    headers = {"www-authenticate": "Key"} if type(exc) is AuthError else {}
    retry_after = getattr(exc, "retry_after", None)  # an error that passes with time says when to try again
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return error_response(status_of(exc), str(exc), exc.error_type, headers)


def database_unavailable_response() -> JSONResponse:
    return error_response(
        503, DATABASE_UNAVAILABLE, "database_unavailable", {"retry-after": str(DATABASE_RETRY_AFTER)}
    )


def pydantic_errors(errors: list[Any], prefix: str) -> list[dict[str, Any]]:
    """pydantic's ``errors()`` with ``loc`` under ``prefix`` ("body"), without the docs URL."""
    return [{**e, "loc": [prefix, *e["loc"]]} for e in errors]


def _jsonable_error(error: dict[str, Any]) -> dict[str, Any]:
    error = {k: v for k, v in error.items() if k != "url"}
    if "ctx" in error:
        error["ctx"] = {k: _jsonable(v) for k, v in error["ctx"].items()}
    if "input" in error:
        error["input"] = _jsonable(error["input"])
    return error


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


async def _on_framecast_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FramecastError)
    if status_of(exc) >= 500:
        logger.error("%s: %s", type(exc).__name__, exc)
    return framecast_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(list(exc.errors()))


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error_type = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, exc.detail, error_type, dict(exc.headers or {}))


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database failing under a request is the server's state, not a bug: 503 (or 507 when full), said once
    per request without the SQL; anything else from the driver stays a 500 at the request boundary."""
    if is_disk_full(exc):
        logger.error("the job database is full: %s", describe(exc))
        return framecast_error_response(OutOfSpace())
    if not is_transient(exc):
        raise exc
    logger.warning(
        "%s %s: the job database is unreachable (%s)", request.method, request.url.path, describe(exc)
    )
    return database_unavailable_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(PoolTimeout, _on_database_error)
    app.add_exception_handler(FramecastError, _on_framecast_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
