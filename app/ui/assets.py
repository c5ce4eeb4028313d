"""Static files the app serves itself (the demo page, the API docs' Swagger UI and ReDoc), so
every page works on a network without internet.

Only files named up front are served (no path from the URL ever reaches the filesystem). They
are read once, on first use, and revalidated by ETag: `no-cache` instead of the API's `no-store`,
because these are public code, not medical data, and Swagger UI alone is 1.5 MB.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def load_asset(path: Path) -> Asset:
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, MEDIA_TYPES[path.suffix], etag)


def files_in(directory: Path, *names: str) -> dict[str, Path]:
    return {name: directory / name for name in names}


class AssetDir:
    """A fixed set of files, looked up by their public name."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def response(self, request: Request, name: str) -> Response:
        path = self.files.get(name)
        if path is None:
            raise HTTPException(404)
        asset = load_asset(path)
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
