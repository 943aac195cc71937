"""Queue routes: submit, status, status stream, result, cancel. Thin: parse, call the service, shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from framecast.api import deps, protocol
from framecast.api.auth import Principal
from framecast.api.errors import error_response
from framecast.api.middleware import set_request_id
from framecast.api.service import RequestService
from framecast.api.stream import SlotStreamingResponse, StreamSlots, status_events
from framecast.jobs.models import CancelOutcome, Job
from framecast.schema import TextToVideoOutput

INPUT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TextToVideoInput"}}},
    }
}
_STATUS_DOC: dict[int | str, dict[str, Any]] = {
    200: {"description": "COMPLETED (a failed job carries error and error_type)"},
    202: {"description": "IN_QUEUE (with queue_position) or IN_PROGRESS"},
}
_CANCEL_DOC: dict[int | str, dict[str, Any]] = {
    202: {"description": '{"status": "CANCELLATION_REQUESTED"}'},
    400: {"description": '{"status": "ALREADY_COMPLETED"}'},
    404: {"description": '{"status": "NOT_FOUND"}'},
}
_CANCEL_CODES = {
    CancelOutcome.CANCELLATION_REQUESTED: 202,
    CancelOutcome.ALREADY_COMPLETED: 400,
    CancelOutcome.NOT_FOUND: 404,
}


async def submit(
    request: Request,
    fal_webhook: str | None = Query(None, description="URL to POST the outcome to when the request ends"),
    service: RequestService = Depends(deps.service),
    principal: Principal = Depends(deps.principal),
    base_url: str = Depends(deps.base_url),
) -> JSONResponse:
    job, position = await accept(request, fal_webhook, service, principal, base_url)
    return JSONResponse(protocol.submit_body(job, position, base_url))


async def accept(
    request: Request,
    fal_webhook: str | None,
    service: RequestService,
    principal: Principal,
    base_url: str,
) -> tuple[Job, int]:
    """Parse a submission (headers and body) and enqueue it: what the queue and sync routes share."""
    options = protocol.submit_options(request.headers, fal_webhook)
    body = protocol.parse_input(await request.body(), request.headers.get("content-type"))
    if options.webhook_url is not None:
        await service.admit_webhook(options.webhook_url)
    job, position = await service.writing(service.submit, body, options, principal, base_url)
    set_request_id(request, job.id)
    return job, position


async def status(
    request_id: str,
    request: Request,
    logs: str | None = Query(None, description="1/true to include the logs, 0/false (default) not"),
    service: RequestService = Depends(deps.service),
    principal: Principal = Depends(deps.principal),
    base_url: str = Depends(deps.base_url),
) -> JSONResponse:
    set_request_id(request, request_id)
    with_logs = protocol.logs_flag(logs)
    job, position, entries = await service.reading(service.status, request_id, principal, with_logs)
    body = protocol.status_body(job, position, entries, base_url)
    return JSONResponse(body, protocol.status_code_of(job))


async def status_stream(
    request_id: str,
    request: Request,
    logs: str | None = Query(None, description="1/true to include the logs, 0/false (default) not"),
    service: RequestService = Depends(deps.service),
    principal: Principal = Depends(deps.principal),
    base_url: str = Depends(deps.base_url),
    slots: StreamSlots = Depends(deps.stream_slots),
) -> StreamingResponse:
    set_request_id(request, request_id)
    with_logs = protocol.logs_flag(logs)
    job = await service.reading(service.get, request_id, principal)
    slots.take()  # after the checks: a request that is refused anyway holds no slot
    return SlotStreamingResponse(
        slots,
        status_events(service, job.id, with_logs, base_url),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


def result(
    request_id: str,
    request: Request,
    service: RequestService = Depends(deps.service),
    principal: Principal = Depends(deps.principal),
) -> Response:
    set_request_id(request, request_id)
    job = service.finished(request_id, principal)
    if job.failed:
        return error_response(service.error_status(job, sync=False), job.error, job.error_type)
    return JSONResponse(service.output(job))


def cancel(
    request_id: str,
    request: Request,
    service: RequestService = Depends(deps.service),
    principal: Principal = Depends(deps.principal),
) -> JSONResponse:
    set_request_id(request, request_id)
    outcome = service.cancel(request_id, principal)
    return JSONResponse(protocol.cancel_body(outcome.value), _CANCEL_CODES[outcome])


def router() -> APIRouter:
    """Submit at the endpoint path; the requests/ routes under the app path and the full endpoint path."""
    api = APIRouter(tags=["queue"])
    api.add_api_route(
        protocol.SUBMIT_PATH,
        submit,
        methods=["POST"],
        summary="Submit a request to the queue",
        openapi_extra=INPUT_BODY,
    )
    for index, prefix in enumerate(protocol.REQUESTS_PREFIXES):
        doc = index == 0  # the full-path aliases work but are not listed twice
        api.add_api_route(
            f"{prefix}/{{request_id}}/status",
            status,
            methods=["GET"],
            summary="Request status",
            responses=_STATUS_DOC,
            include_in_schema=doc,
        )
        api.add_api_route(
            f"{prefix}/{{request_id}}/status/stream",
            status_stream,
            methods=["GET"],
            summary="Request status as Server-Sent Events",
            include_in_schema=doc,
        )
        api.add_api_route(
            f"{prefix}/{{request_id}}",
            result,
            methods=["GET"],
            summary="Request result",
            responses={200: {"model": TextToVideoOutput}},
            include_in_schema=doc,
        )
        api.add_api_route(
            f"{prefix}/{{request_id}}/cancel",
            cancel,
            methods=["PUT"],
            status_code=202,  # the documented default: it never answers 200
            summary="Cancel a request",
            responses=_CANCEL_DOC,
            include_in_schema=doc,
        )
    return api
