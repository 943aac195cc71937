"""Output files: ``GET /files/{key}`` with HTTP Range (206 / 416), so browsers and players can seek."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from framecast.errors import NotFoundError


def get_file(key: str, request: Request) -> FileResponse:
    # An expired file is gone even before housekeeping has deleted it.
    if key in request.app.state.store.expired_files():
        raise NotFoundError("File not found")
    path = request.app.state.storage.local_path(key)
    if path is None:
        raise NotFoundError("File not found")
    media_type = "video/mp4" if key.endswith(".mp4") else mimetypes.guess_type(key)[0]
    return FileResponse(path, media_type=media_type or "application/octet-stream")


def router() -> APIRouter:
    api = APIRouter(tags=["files"])
    api.add_api_route(
        "/files/{key:path}",
        get_file,
        methods=["GET"],
        summary="Download an output file (Range supported)",
        response_class=FileResponse,
    )
    api.add_api_route("/files/{key:path}", get_file, methods=["HEAD"], include_in_schema=False)
    return api
