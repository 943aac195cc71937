"""fal's wire shapes for the queue protocol, in the order ``spec/fal-protocol.md`` lists them.

Everything a client parses lives here: request headers we honour, the URLs we hand out, status and error
bodies.
Routers and services build responses only through these functions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from framecast import egress
from framecast.api.errors import (
    ERROR_TYPE_HEADER,
    REQUEST_TIMEOUT_TYPE_HEADER,
    RequestInvalid,
    UnsupportedMedia,
    pydantic_errors,
)
from framecast.errors import EgressRefused
from framecast.jobs.models import Job, JobStatus, LogEntry, Priority
from framecast.schema import APP_ID, ENDPOINT_ID, TextToVideoInput

# Paths. fal addresses a queued request by app (owner/alias); the full endpoint path is accepted too.
QUEUE_PREFIX = "/queue"
SYNC_PATH = f"/{ENDPOINT_ID}"
SUBMIT_PATH = f"{QUEUE_PREFIX}/{ENDPOINT_ID}"
REQUESTS_PREFIXES = (f"{QUEUE_PREFIX}/{APP_ID}/requests", f"{QUEUE_PREFIX}/{ENDPOINT_ID}/requests")

# Headers.
REQUEST_ID_HEADER = "x-fal-request-id"
PRIORITY_HEADER = "x-fal-queue-priority"
REQUEST_TIMEOUT_HEADER = "x-fal-request-timeout"
STORE_IO_HEADER = "x-fal-store-io"
NO_RETRY_HEADER = "x-fal-no-retry"
LIFECYCLE_HEADER = "x-fal-object-lifecycle-preference"
TARGET_URL_HEADER = "x-fal-target-url"
__all__ = ["ERROR_TYPE_HEADER", "REQUEST_TIMEOUT_TYPE_HEADER"]  # re-exported: errors.py owns them

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
TRUE_WORDS = ("1", "true")
FALSE_WORDS = ("0", "false")


@dataclass(frozen=True)
class SubmitOptions:
    """What a submit's headers and query ask of the queue, already checked."""

    priority: Priority = Priority.normal
    start_timeout_seconds: float | None = None
    store_io: bool = True
    file_ttl_seconds: int | None = None
    webhook_url: str | None = None
    no_retry: bool = False  # X-Fal-No-Retry: 1


def _header_error(header: str, value: str, msg: str) -> RequestInvalid:
    return RequestInvalid([{"type": "value_error", "loc": ["header", header], "msg": msg, "input": value}])


def _priority(value: str | None) -> Priority:
    if value is None:
        return Priority.normal
    try:
        return Priority[value.strip().lower()]
    except KeyError:
        raise _header_error(PRIORITY_HEADER, value, "Queue priority must be 'normal' or 'low'") from None


def _start_timeout(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise _header_error(
            REQUEST_TIMEOUT_HEADER, value, "Request timeout must be a positive number of seconds"
        )
    return seconds


def _store_io(value: str | None) -> bool:
    if value is None:
        return True
    word = value.strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise _header_error(STORE_IO_HEADER, value, "Store IO must be '0' or '1'")
    return word in TRUE_WORDS


def _file_ttl(value: str | None) -> int | None:
    """fal's lifecycle preference: ``expiration_duration_seconds`` and ``initial_acl`` are both optional (the JS
    client's ``storageSettings`` may send only the ACL). Output URLs here are unguessable capabilities with no
    per-user access list, so an ``initial_acl`` is accepted, checked for shape, and has no further effect."""
    if value is None:
        return None
    try:
        preference = json.loads(value)
    except ValueError:
        preference = None
    if not isinstance(preference, dict):
        raise _header_error(
            LIFECYCLE_HEADER, value, 'Expected a JSON object: {"expiration_duration_seconds": N}'
        )
    seconds = preference.get("expiration_duration_seconds")
    if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0):
        raise _header_error(LIFECYCLE_HEADER, value, "expiration_duration_seconds must be a positive integer")
    if not isinstance(preference.get("initial_acl", {}), dict):
        raise _header_error(LIFECYCLE_HEADER, value, "initial_acl must be a JSON object")
    return seconds


def webhook_invalid(value: str, exc: EgressRefused) -> RequestInvalid:
    error_type = {"scheme": "url_scheme", "too long": "url_too_long"}.get(exc.reason, "url_parsing")
    return RequestInvalid(
        [
            {
                "type": error_type,
                "loc": ["query", "fal_webhook"],
                "msg": f"Invalid webhook: {exc}",
                "input": value,
            }
        ]
    )


def _webhook_url(value: str | None) -> str | None:
    """The syntax rules (egress.target); where the host leads is checked next, by the egress policy."""
    if value is None:
        return None
    try:
        egress.target(value)
    except EgressRefused as exc:
        raise webhook_invalid(value, exc) from None
    return value


def submit_options(headers: Any, fal_webhook: str | None) -> SubmitOptions:
    """Read the fal request headers (a case-insensitive mapping) and the webhook query parameter."""
    return SubmitOptions(
        priority=_priority(headers.get(PRIORITY_HEADER)),
        start_timeout_seconds=_start_timeout(headers.get(REQUEST_TIMEOUT_HEADER)),
        store_io=_store_io(headers.get(STORE_IO_HEADER)),
        file_ttl_seconds=_file_ttl(headers.get(LIFECYCLE_HEADER)),
        webhook_url=_webhook_url(fal_webhook),
        no_retry=_no_retry(headers.get(NO_RETRY_HEADER)),
    )


def _no_retry(value: str | None) -> bool:
    """``X-Fal-No-Retry``: 1/true asks that the request not run again after its worker died."""
    if value is None:
        return False
    word = value.strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise _header_error(NO_RETRY_HEADER, value, "No-retry must be '0' or '1'")
    return word in TRUE_WORDS


def logs_flag(value: str | None) -> bool:
    """``logs`` arrives as ``1``/``0`` (JS client) or ``true``/``false`` (Python client)."""
    if value is None:
        return False
    word = value.strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise RequestInvalid(
            [
                {
                    "type": "bool_parsing",
                    "loc": ["query", "logs"],
                    "msg": "Input should be 1, 0, true or false",
                    "input": value,
                }
            ]
        )
    return word in TRUE_WORDS


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} is out of range")
    return value


def parse_input(body: bytes, content_type: str | None) -> TextToVideoInput:
    """The request body as the endpoint's input; every failure is a 4xx in FastAPI's shape.

    A JSON body is taken without a JSON Content-Type too: with none at all, and with curl's default for ``-d``
    (``application/x-www-form-urlencoded``), which is what fal's own curl examples send; fal accepts both.
    """
    media_type = (content_type or "").split(";")[0].strip().lower()
    declared = media_type == "application/json" or media_type.endswith("+json") or not media_type
    if not declared and media_type != FORM_MEDIA_TYPE:
        raise _unsupported(media_type)
    try:
        data = _json(body)
    except RequestInvalid:
        if declared:
            raise
        raise _unsupported(media_type) from None  # a real form post
    try:
        return TextToVideoInput.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid(pydantic_errors(exc.errors(include_url=False), "body")) from None


def _unsupported(media_type: str) -> UnsupportedMedia:
    return UnsupportedMedia(f"Content-Type must be application/json, got {media_type!r}")


def _json(body: bytes) -> Any:
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
        # A lone surrogate (``"\\ud800"``) parses, but is not text: it could be neither stored nor echoed back.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:
        raise RequestInvalid(
            [
                {
                    "type": "json_invalid",
                    "loc": ["body", getattr(exc, "pos", 0)],
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": getattr(exc, "msg", None) or str(exc)},
                }
            ]
        ) from None
    return data


# URLs handed out.
def request_urls(base_url: str, request_id: str) -> dict[str, str]:
    response_url = f"{base_url}{QUEUE_PREFIX}/{APP_ID}/requests/{request_id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }


# Bodies.
def submit_body(job: Job, queue_position: int, base_url: str) -> dict[str, Any]:
    return {
        "status": JobStatus.IN_QUEUE.value,
        "request_id": job.id,
        **request_urls(base_url, job.id),
        "queue_position": queue_position,
    }


def status_body(
    job: Job, queue_position: int | None, logs: list[LogEntry] | None, base_url: str
) -> dict[str, Any]:
    """One status object. ``logs`` is ``None`` when the caller did not ask for logs."""
    body: dict[str, Any] = {
        "status": job.status.value,
        "request_id": job.id,
        **request_urls(base_url, job.id),
    }
    if job.status is JobStatus.IN_QUEUE:
        body["queue_position"] = queue_position if queue_position is not None else 0
        return body
    body["logs"] = None if logs is None else [entry.to_fal() for entry in logs]
    if job.status is JobStatus.COMPLETED:
        inference_time = job.inference_time
        body["metrics"] = {} if inference_time is None else {"inference_time": inference_time}
        if job.failed:
            body["error"] = job.error
            body["error_type"] = job.error_type
    return body


def status_code_of(job: Job) -> int:
    return 200 if job.status is JobStatus.COMPLETED else 202


def cancel_body(outcome: str) -> dict[str, str]:
    return {"status": outcome}
