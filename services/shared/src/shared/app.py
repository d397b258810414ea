"""The FastAPI app factory every HTTP service starts from: errors, probes, metrics, request ids."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import faults
from shared.failures import (
    DependencyUnavailable,
    Failure,
    Invalid,
    Malformed,
    NotAllowed,
    NotFound,
    Overloaded,
    Refused,
    Stale,
    Unauthenticated,
    UpstreamRefused,
)
from shared.http_edge import BodyLimit, CatchAll, error_body
from shared.metrics import HttpMetrics, MetricsMiddleware
from shared.requests import RequestIdMiddleware
from shared.telemetry import spans_recorded
from shared.trace_context import TraceContextMiddleware

log = logging.getLogger(__name__)

BODY_LIMIT = 1024 * 1024  # bytes: the gateway's default limit (GATEWAY_BODY_LIMIT=1m) too
GEN0_THRESHOLD = 20_000  # allocations between two collections of the youngest generation
NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
ReadinessCheck = Callable[[], Awaitable[object]]
# What a scrape reads first (a queue's depth, the event log's backlog): the lifespan appends
# them to `app.state.metric_refreshers`. One that fails or hangs leaves its gauges as they were.
MetricRefresher = Callable[[], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

# Each kind of failure's HTTP status: the one place the domain's words become HTTP's.
HTTP_STATUS: dict[type[Failure], int] = {
    Malformed: 400,
    Unauthenticated: 401,
    NotAllowed: 403,
    NotFound: 404,
    Refused: 409,
    Stale: 412,
    Invalid: 422,
    UpstreamRefused: 502,
    DependencyUnavailable: 503,
    Overloaded: 503,
}
RETRY_AFTER = {"Retry-After": "2"}  # seconds: a dependency that is away is usually back soon

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def create_app(
    *,
    title: str,
    version: str,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    description: str = "",
    body_limit: int = BODY_LIMIT,
    drivers: Sequence[faults.DriverFaults] = (),
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """Build a service's app. Its lifespan puts readiness checks in `app.state.readiness`.

    Only the public routes are in its OpenAPI document (the one the gateway's docs page
    shows): probes, metrics and /internal/ routes leave it (`include_in_schema=False`)."""
    app = FastAPI(
        title=title,
        version=version,
        description=description,
        lifespan=_frozen_after(lifespan),
        # No redirect to the path with or without its trailing slash: Starlette builds its
        # Location from the client's Host header (an open redirect that re-sends a POST's
        # credentials). A route answers at exactly the path it declares.
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry layer would trace every request a second time, beside
        # TraceContextMiddleware or FastAPIInstrumentor below (decision 47).
        telemetry=NO_NATIVE_TELEMETRY,
    )
    faults.recognise(*drivers)  # before the handlers: they are registered per error class
    app.state.readiness = {}
    app.state.metric_refreshers = []
    registry = registry or CollectorRegistry()
    ProcessCollector(registry=registry)  # process_resident_memory_bytes, CPU, open files
    app.state.metrics_registry = registry
    _add_error_handlers(app)
    # Each router's routes join the app's own list, as routes declared on the app would:
    # FastAPI >= 0.137 keeps an included router as a node of its own, matched again inside
    # on every request (a twentieth of a read's CPU here, decision 117). An APIRoute carries
    # its router's tags, responses and dependencies from its declaration; nothing here is
    # included with a prefix or options of its own.
    for router in (_probes(registry), *routers):
        app.router.routes.extend(router.routes)
    if spans_recorded():
        # Imported only where spans are recorded: a library a process does not use is memory.
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="/healthz,/readyz,/metrics")
    else:
        app.add_middleware(TraceContextMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry))
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(BodyLimit, limit=body_limit)
    app.add_middleware(CatchAll)  # outermost of ours: nothing escapes to the server
    return app


def _frozen_after(lifespan: Lifespan) -> Lifespan:
    """The service's lifespan, then the collector tuned for a long-lived server.

    What start-up built (modules, the app, its clients) lives as long as the process:
    `gc.freeze()` moves it out of the collector's sight, so a full collection no longer
    walks it. And a request allocates hundreds of containers that reference counting frees,
    so collecting the young generation every 700 allocations (Python's default) mostly finds
    nothing: every GEN0_THRESHOLD instead. Measured under load (decision 47): the collector
    took a quarter of a read's CPU before, and order_command's CPU per create fell by 15%.
    Both are undone when the app stops (a test process starts and stops many).
    """

    @contextlib.asynccontextmanager
    async def tuned(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            threshold = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(GEN0_THRESHOLD, *threshold[1:])
            try:
                yield
            finally:
                gc.set_threshold(*threshold)
                gc.unfreeze()

    return tuned


def _probes(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(tags=["operations"], include_in_schema=False)

    @router.get("/healthz", summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Every dependency of this service answers")
    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, ReadinessCheck] = request.app.state.readiness
        timeout = getattr(request.app.state, "dependency_timeout", 1.5)
        results = await asyncio.gather(
            *(asyncio.wait_for(check(), timeout) for check in checks.values()),
            return_exceptions=True,
        )
        status = {
            name: "ok" if not isinstance(result, BaseException) else "unavailable"
            for name, result in zip(checks, results, strict=True)
        }
        if all(value == "ok" for value in status.values()):
            return JSONResponse({"status": "ready", "checks": status})
        failed = ", ".join(name for name, value in status.items() if value != "ok")
        return JSONResponse(
            error_body("not_ready", f"unavailable: {failed}", status), status_code=503
        )

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        refreshers: list[MetricRefresher] = request.app.state.metric_refreshers
        timeout = getattr(request.app.state, "dependency_timeout", 1.5)
        results = await asyncio.gather(
            *(asyncio.wait_for(refresh(), timeout) for refresh in refreshers),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, Exception):
                log.debug("a metric was not refreshed: %s", type(result).__name__)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Failure)
    async def failure(_: Request, exc: Failure) -> JSONResponse:
        return answer_failure(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _is_not_json(request, exc):
            return JSONResponse(
                error_body("unsupported_media_type", "Send the body as application/json"),
                status_code=415,
            )
        return JSONResponse(
            error_body("validation_error", "The request is not valid", _field_errors(exc)),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    async def dependency_error(request: Request, exc: Exception) -> JSONResponse:
        if faults.is_busy(exc):
            log.warning("overloaded: no connection free in time (%s)", type(exc).__name__)
            return answer_failure(Overloaded("This service is at capacity; try again shortly"))
        if not faults.is_unavailable(exc):
            return _internal_error(request, exc)
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return answer_failure(
            DependencyUnavailable("A dependency of this service is down; try again shortly")
        )

    # Registered per class (the service's drivers', shared.faults.recognise), so each is
    # answered by the app: a 503 when it means a dependency is away or the process is full,
    # else a 500.
    for error in (*faults.WRAPPERS, *faults.UNAVAILABLE, *faults.BUSY):
        app.add_exception_handler(error, dependency_error)


def answer_failure(failure: Failure) -> JSONResponse:
    """A failure as its HTTP answer: the status its kind maps to, the JSON error body, and
    the headers HTTP asks for with that status."""
    status = next(HTTP_STATUS[kind] for kind in type(failure).__mro__ if kind in HTTP_STATUS)
    headers: dict[str, str] | None = None
    if isinstance(failure, Unauthenticated):
        headers = {"WWW-Authenticate": f'Bearer error="{failure.reason}"'}
    elif isinstance(failure, (DependencyUnavailable, Overloaded)):
        headers = RETRY_AFTER
    return JSONResponse(
        error_body(failure.code, failure.message, failure.details),
        status_code=status,
        headers=headers,
    )


def _internal_error(request: Request, exc: BaseException) -> JSONResponse:
    where = f"{request.method} {request.url.path}"
    statement = getattr(exc, "statement", None)  # a database error (SQLAlchemy's DBAPIError)
    if statement is not None:
        # The driver's own message may quote a value it was given (asyncpg does: "invalid
        # input for query argument $1: '...'"), which may be a client's data or a secret: the
        # log names the error, the statement and where it was raised, never the values.
        orig = getattr(exc, "orig", None)
        log.error(
            "database error on %s: %s\n[SQL: %s]\n%s",
            where,
            type(getattr(orig, "__cause__", None) or orig).__name__,  # the driver's
            statement,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
    else:
        log.error("unhandled error on %s", where, exc_info=exc)
    return JSONResponse(error_body("internal_error", "Internal error"), status_code=500)


def _is_not_json(request: Request, exc: RequestValidationError) -> bool:
    """A JSON body route that got a form or text: say so, rather than list field errors."""
    content_type = request.headers.get("content-type", "")
    return "json" not in content_type and any(
        error.get("loc") == ("body",) and error.get("type") == "model_attributes_type"
        for error in exc.errors()
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Where and what, never the input itself: it may hold a password."""
    return [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type")}
        for error in exc.errors()
    ]
