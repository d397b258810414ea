"""`GET /board`: the live order board, a page built on `GET /orders/stream` (docs/board.md).

Plain HTML, one script and one stylesheet, all in this package (`board/`): no build step, no
CDN, nothing fetched at run time. The page names each asset with its integrity hash and is
served with a Content-Security-Policy that lets it load its own assets and talk to its own
origin only.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from shared.failures import NotFound

ASSETS = Path(__file__).with_name("board")
TYPES = {"board.js": "text/javascript; charset=utf-8", "board.css": "text/css; charset=utf-8"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["board"], include_in_schema=False)


def _integrity(data: bytes) -> str:
    return f"sha384-{base64.b64encode(hashlib.sha384(data).digest()).decode()}"


@cache
def page() -> str:
    html = (ASSETS / "index.html").read_text(encoding="utf-8")
    for name in TYPES:
        html = html.replace(f"{{{{{name}}}}}", _integrity((ASSETS / name).read_bytes()))
    return html


@router.get("/board")
async def board() -> HTMLResponse:
    return HTMLResponse(page(), headers=_PAGE_HEADERS)


@router.get("/board/assets/{name}")
async def asset(name: str) -> Response:
    if name not in TYPES:
        raise NotFound("No such asset")
    return Response(
        (ASSETS / name).read_bytes(),
        media_type=TYPES[name],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )
