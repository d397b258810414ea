"""W3C trace context through a request or a message, for a process that records no spans.

FastAPI's OpenTelemetry instrumentation matches the route and gathers a dozen attributes for
every request before it asks whether the span is recorded: a fifth of a cheap read's CPU, for
nothing, when no span is exported. FastStream's does the same for every message, twice for
one that is consumed and sends another (a tenth of the status worker's CPU a timer, decision
114). These middlewares do only what must happen anyway: the caller's `traceparent` (or a new
trace) becomes the current context, so the logs, the outbox and the broker carry its ids, and
what is published carries it on. `shared.app` and `shared.broker` install the full
instrumentation instead when spans are recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.response import PublishCommand
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Receive, Scope, Send

tracer = trace.get_tracer(__name__)
_CARRIED = (b"traceparent", b"tracestate")


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _CARRIED
        }
        parent = propagate.extract(carrier)
        with tracer.start_as_current_span("http", context=parent, kind=trace.SpanKind.SERVER):
            await self.app(scope, receive, send)


class BrokerTraceContext(BaseMiddleware):
    """A message is handled in the trace of the change that sent it (its headers'
    `traceparent`), and a message published meanwhile carries that trace on."""

    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        parent = propagate.extract(msg.headers)
        with tracer.start_as_current_span("message", context=parent, kind=trace.SpanKind.CONSUMER):
            return await call_next(msg)

    async def publish_scope(
        self, call_next: Callable[[PublishCommand], Awaitable[Any]], cmd: PublishCommand
    ) -> Any:
        propagate.inject(cmd.headers)
        return await call_next(cmd)
