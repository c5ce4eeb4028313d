"""The demo page at `GET /`: a person picks an image, types the text and sees the prediction.

It is a static page (HTML, CSS, JS under app/ui/static) calling the same public API as any
client, so it needs no server-side state and cannot diverge from the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.ui import csp
from app.ui.assets import AssetDir, files_in

STATIC = Path(__file__).parent / "static"
PAGE_ASSETS = AssetDir(files_in(STATIC, "page.js", "page.css"))
INDEX = AssetDir(files_in(STATIC, "index.html"))

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page(request: Request) -> Response:
    response = INDEX.response(request, "index.html")
    response.headers["Content-Security-Policy"] = csp.PAGE
    return response


@router.get("/ui/{name}")
async def page_asset(request: Request, name: str) -> Response:
    return PAGE_ASSETS.response(request, name)
