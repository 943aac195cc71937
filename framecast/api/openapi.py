"""``/openapi.json``: FastAPI's schema of the routes, plus what it cannot see: the input model (parsed by hand),
the proxy route, and every status code the API can answer (``ANSWERS``, the one table to extend)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from framecast.api.protocol import QUEUE_PREFIX, SUBMIT_PATH, SYNC_PATH
from framecast.api.proxy import PROXY_PATH
from framecast.schema import TextToVideoInput

FAL_ERROR = {
    "type": "object",
    "title": "FalError",
    "description": "fal's error shape; the same value is in the X-Fal-Error-Type header",
    "properties": {"detail": {"title": "Detail"}, "error_type": {"type": "string", "title": "Error Type"}},
    "required": ["detail", "error_type"],
}
RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
}

# Which operations an answer applies to.
EVERY = "every"  # the connection guard and the request boundary answer these on any route
SUBMIT = "submit"  # the queue submit and the sync run
REQUEST = "request"  # status, stream, result and cancel of one request
RESULT = "result"
SYNC = "sync"
FILES = "files"
PROXY = "proxy"


@dataclass(frozen=True)
class Answer:
    status: int
    scopes: frozenset[str]
    description: str
    retry_after: bool = False


def _answer(status: int, scopes: str, description: str, retry_after: bool = False) -> Answer:
    return Answer(status, frozenset(scopes.split()), description, retry_after)


ANSWERS: tuple[Answer, ...] = (
    _answer(
        400, f"{RESULT} {PROXY}", "Request is still in progress; or a missing or unsupported x-fal-target-url"
    ),
    _answer(401, f"{SUBMIT} {REQUEST}", "Missing or wrong API key, when keys are configured"),
    _answer(403, REQUEST, "The request belongs to another API key"),
    _answer(404, f"{REQUEST} {FILES}", "No such request or file"),
    _answer(
        408, EVERY, "Request headers or body not received in time (FRAMECAST_HEADER/BODY_TIMEOUT_SECONDS)"
    ),
    _answer(410, RESULT, "The result was delivered once and not stored (X-Fal-Store-IO: 0)"),
    _answer(413, SUBMIT, "The body is larger than FRAMECAST_MAX_BODY_BYTES"),
    _answer(415, SUBMIT, "The body is not JSON (Content-Type)"),
    _answer(416, FILES, "The Range cannot be satisfied"),
    _answer(422, f"{SUBMIT} {REQUEST}", "A field, header or query parameter is invalid (FastAPI's shape)"),
    _answer(
        429, SUBMIT, "A queue quota is reached (FRAMECAST_MAX_QUEUED_PER_KEY, FRAMECAST_MAX_QUEUED)", True
    ),
    _answer(431, EVERY, "The request line and headers are larger than FRAMECAST_MAX_HEADER_BYTES"),
    _answer(500, EVERY, "An internal error; for a failed job, its own error"),
    _answer(503, EVERY, "Too many connections, the database unreachable, or too many status streams", True),
    _answer(504, f"{SYNC} {RESULT}", "Not started within X-Fal-Request-Timeout, or past the sync time limit"),
    _answer(507, SUBMIT, "The server has no space left to store the request"),
)


def scopes_of(path: str, method: str) -> set[str]:
    scopes = {EVERY}
    if method == "post" and path in (SUBMIT_PATH, SYNC_PATH):
        scopes |= {SUBMIT, SYNC} if path == SYNC_PATH else {SUBMIT}
    elif path.startswith(QUEUE_PREFIX) and "{request_id}" in path:
        scopes.add(REQUEST)
        if path.endswith("{request_id}"):
            scopes.add(RESULT)
    elif path.startswith("/files/"):
        scopes.add(FILES)
    elif path == PROXY_PATH:
        scopes |= {PROXY, SUBMIT, REQUEST}  # it answers whatever the route it stands for answers
    return scopes


def document_answers(schema: dict[str, Any]) -> None:
    """Add every answer of ``ANSWERS`` to the operations it applies to, keeping what a route documents itself."""
    schema["components"]["schemas"]["FalError"] = FAL_ERROR
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/FalError"}}}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            scopes = scopes_of(path, method)
            for answer in ANSWERS:
                if answer.scopes.isdisjoint(scopes) or str(answer.status) in responses:
                    continue
                response: dict[str, Any] = {"description": answer.description}
                if answer.status != 422:  # FastAPI documents its own validation shape where it applies
                    response["content"] = error_content
                if answer.retry_after:
                    response["headers"] = RETRY_AFTER
                responses[str(answer.status)] = response


def openapi_for(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        input_schema = TextToVideoInput.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(input_schema.pop("$defs", {}))
        components["TextToVideoInput"] = input_schema
        schema["paths"][PROXY_PATH] = {
            method: {
                "tags": ["proxy"],
                "summary": "fal server proxy: runs the route named by the x-fal-target-url header",
                "parameters": [
                    {
                        "name": "x-fal-target-url",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {"400": {"description": "missing or unsupported target"}},
            }
            for method in ("get", "post", "put")
        }
        document_answers(schema)
        app.openapi_schema = schema
        return schema

    return openapi
