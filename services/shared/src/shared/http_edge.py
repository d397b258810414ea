"""The two outermost layers of every service's app: a body limit, and a last resort that
answers any exception the app let escape as a JSON 500.

Why the last resort: Starlette's ServerErrorMiddleware answers an unhandled exception with a
500 and then re-raises it to the server, and uvicorn closes the connection it came on. Behind
nginx that connection is a kept-alive upstream connection, which nginx may already be handing
to another client's request: a POST is not retried, so one client's bad request broke another
client's create with a 502. Here the exception ends as an answer, and the connection lives.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The one shape of every error answer, from any layer: `{error: {code, message,
    details}}`."""
    return {"error": {"code": code, "message": message, "details": details}}


_INTERNAL = json.dumps(error_body("internal_error", "Internal error")).encode()


class PayloadTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body reading passes it on as it is (it turns other
    exceptions raised while reading a body into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The body is larger than {limit} bytes")


class CatchAll:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:  # the last resort: nothing escapes to the server
            log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
            if started:
                return  # too late for an answer; the server ends the response
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_INTERNAL)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _INTERNAL})


class BodyLimit:
    """Refuse a body over `limit` bytes: at once when Content-Length says so, else as soon as
    the bytes read pass it (a chunked body). The gateway has a limit too; this one holds for a
    client that reaches a service's port directly."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                # A length of many digits is refused before int() (which takes 4,300 at most).
                if not value.isdigit() or len(value) > 18 or int(value) > self.limit:
                    await _too_large(send, self.limit)
                    return
                break
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(self.limit)
            return message

        await self.app(scope, counting, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body("payload_too_large", f"The body is larger than {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the rest of the body is not read
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
