"""The playground page (``framecast/static``) at ``/``: its scripts call the API relative to the page.

One route per file, not a catch-all mount, so unknown paths and wrong methods keep their fal-shaped 404/405.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse


def router(static_dir: Path) -> APIRouter:
    api = APIRouter(tags=["playground"])
    if not static_dir.is_dir():
        return api
    for path in sorted(p for p in static_dir.iterdir() if p.is_file()):
        api.add_api_route(
            "/" if path.name == "index.html" else f"/{path.name}",
            _serve(path),
            methods=["GET"],
            include_in_schema=False,
        )
    return api


def _serve(path: Path):  # noqa: ANN202 - a route endpoint
    def serve() -> FileResponse:
        return FileResponse(path)

    return serve
