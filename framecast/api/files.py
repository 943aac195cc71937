"""Output files: ``GET /files/{key}`` with HTTP Range (206 / 416), so browsers and players can seek; a file in
an S3 bucket is a 307 redirect to a presigned URL made for this request."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from framecast.errors import NotFoundError


def get_file(key: str, request: Request) -> Response:
    # An expired file is gone even before housekeeping has deleted it.
    if key in request.app.state.store.expired_files():
        raise NotFoundError("File not found")
    storage = request.app.state.storage
    path = storage.local_path(key)
    if path is None:
        # A bucket's file: a fresh presigned URL, so the link in a result outlives any signature.
        target = storage.redirect_url(key)
        if target is None:
            raise NotFoundError("File not found")
        return RedirectResponse(target, status_code=307)
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
