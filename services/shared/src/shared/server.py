"""How every service serves HTTP: uvicorn over the service's app factory, traced, JSON-logged,
and stopped gracefully (in-flight requests finish, then the lifespan closes its parts)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.http_edge import error_body
from shared.telemetry import setup_telemetry

_BAD_REQUEST = json.dumps(
    error_body("bad_request", "The request is not valid HTTP (a control byte in a header?)")
).encode()


class JsonErrorsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, but a request it cannot parse (a control byte in a header, a
    malformed request line) gets the platform's JSON error instead of a plain-text one. That
    answer is the server's own, written before any app runs."""

    def send_400_response(self, msg: str) -> None:
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(_BAD_REQUEST)).encode() + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
        ]
        self.transport.write(b"".join(head) + _BAD_REQUEST)
        self.transport.close()


STARTUP_FAILURE = 3  # uvicorn's exit status when the app does not start
_stopping = False


def stopping() -> bool:
    """True once the server was asked to stop. Its graceful shutdown waits for every open
    response to end: a response that never ends by itself (a server-sent event stream) asks
    this, and ends, so a stop does not wait out the grace period for it."""
    return _stopping


class Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        global _stopping
        _stopping = True
        super().handle_exit(sig, frame)


def serve(factory: str | Callable[[], ASGIApp], *, service: str, host: str, port: int) -> None:
    """`factory` builds the app: `module:function`, or the function (nothing is built at
    import)."""
    setup_telemetry(service)
    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        http=JsonErrorsProtocol,
        log_config=None,  # shared.logs.setup_logging has set the JSON handler
        timeout_graceful_shutdown=10,
    )
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
