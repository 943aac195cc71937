"""The sync route: ``POST /fal-ai/pixverse/v5.5/text-to-video`` answers the output JSON once the job is done.

It is a queued job like any other, waited on here. A failed job answers its own status and fal's error body,
except that statuses the JS client retries (429/502/503/504) become 500: a retry would render it all again.
A user's X-Fal-Request-Timeout stays 504 with ``X-Fal-Request-Timeout-Type: user``, which no client retries.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from framecast.api import deps, protocol
from framecast.api.auth import Principal
from framecast.api.errors import error_response
from framecast.api.queue import INPUT_BODY, accept
from framecast.api.service import RequestService
from framecast.schema import TextToVideoOutput

CLIENT_GONE_STATUS = 499


async def run(
    request: Request,
    service: RequestService = Depends(deps.service),
    principal: Principal = Depends(deps.principal),
    base_url: str = Depends(deps.base_url),
) -> Response:
    job, _ = await accept(request, None, service, principal, base_url)
    done = await service.wait(job.id, request.is_disconnected)
    if done is None:
        return Response(
            status_code=CLIENT_GONE_STATUS
        )  # nobody is listening; nginx's "client closed request"
    if done.failed:
        return error_response(service.error_status(done, sync=True), done.error, done.error_type)
    return JSONResponse(await run_in_threadpool(service.output, done))


def router() -> APIRouter:
    api = APIRouter(tags=["sync"])
    api.add_api_route(
        protocol.SYNC_PATH,
        run,
        methods=["POST"],
        summary="Run and wait for the video",
        responses={200: {"model": TextToVideoOutput}},
        openapi_extra=INPUT_BODY,
    )
    return api
