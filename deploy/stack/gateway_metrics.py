"""The gateway's own metrics: nginx counts nothing by itself, so it sends one short line per
request over syslog (UDP) to this process, which counts them by route template, method and
status, and serves them to Prometheus (docs/operations.md).

    python -m deploy.stack.gateway_metrics      # on GATEWAY_METRICS_HOST:GATEWAY_METRICS_PORT

The same port number serves both: UDP for nginx's lines, TCP (HTTP) for the scrapes, which
nginx passes on at `/metrics/gateway` (the gateway's series) and `/metrics/` (seed004's
per-endpoint calls, successes and failures, over every route the gateway serves).

A request is labelled by the route template it matched (`/orders/{order_id}`), never by its
raw path: a path no route knows is `<unmatched>`. UDP may lose a line if this process is
down or swamped; nginx never waits for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger("gateway_metrics")

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ID = r"[^/]+"
# Every path the gateway answers, as the route template the services name it by (the test
# tests/unit/test_gateway_metrics.py holds this to the services' own routes).
TEMPLATES = [
    "/auth/create_user",
    "/auth/token",
    "/auth/refresh",
    "/auth/logout",
    "/auth/me",
    "/auth/.well-known/jwks.json",
    "/api/v1/login/",
    "/orders",
    "/orders/create_new_order",
    "/orders/update",
    "/orders/stream",
    "/orders/user/{user_id}",
    "/orders/{order_id}",
    "/orders/{order_id}/status",
    "/orders/{order_id}/history",
    "/api/v1/orders/",
    "/api/v1/orders/{order_id}/",
    "/board",
    "/board/assets/{name}",
    "/docs",
    "/docs/",
    "/swagger",
    "/swagger/",
    "/docs/assets/{name}",
    "/openapi/{service}.json",
    "/metrics/",
    "/metrics/{service}",
    "/healthz",
]


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z_]+\})", template)
    return re.compile(
        "".join(_ID if part.startswith("{") else re.escape(part) for part in parts) + "$"
    )


ROUTES = [(_pattern(template), template) for template in TEMPLATES]


def route_of(uri: str) -> str:
    """The template of the route `uri` (a request's path and query) matched."""
    path = uri.split("?", 1)[0]
    return next((template for pattern, template in ROUTES if pattern.match(path)), UNMATCHED)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["method", "route"]
        self.requests = Counter(
            "gateway_requests",
            "Requests the gateway answered, by route template, method and status",
            [*labels, "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "From the request's first byte to the answer's last, as nginx measures it",
            labels,
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 30),
        )
        # seed004's /metrics/: per endpoint, the calls, the successes and the failures.
        self.seed004 = CollectorRegistry()
        self.calls = Counter("http_calls", "Calls of the endpoint", labels, registry=self.seed004)
        self.successes = Counter(
            "http_successes", "Calls answered below 400", labels, registry=self.seed004
        )
        self.failures = Counter(
            "http_failures",
            "Calls answered 400 or above",
            [*labels, "status"],
            registry=self.seed004,
        )

    def count(self, line: bytes) -> None:
        """One nginx syslog line: `<pri>time tag: {"m": method, "u": uri, "s": status, ...}`."""
        start = line.find(b"{")
        try:
            entry: dict[str, Any] = json.loads(line[start:]) if start >= 0 else {}
            status = int(entry["s"])
            method = str(entry["m"]) if entry["m"] in METHODS else "OTHER"
            route = route_of(str(entry["u"]))
            seconds = float(entry["t"])
        except (ValueError, KeyError, TypeError):
            log.warning("not a gateway metrics line: %r", line[:200])
            return
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)
        self.calls.labels(method, route).inc()
        if status < 400:
            self.successes.labels(method, route).inc()
        else:
            self.failures.labels(method, route, str(status)).inc()


class _Lines(asyncio.DatagramProtocol):
    def __init__(self, metrics: GatewayMetrics) -> None:
        self.metrics = metrics

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.metrics.count(data)


def create_app(host: str, port: int, metrics: GatewayMetrics | None = None) -> Starlette:
    metrics = metrics or GatewayMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_DGRAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        listening.bind((host, port))
        transport, _protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Lines(metrics), sock=listening
        )
        try:
            yield
        finally:
            transport.close()

    async def gateway(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def seed004(_: Request) -> Response:
        return Response(generate_latest(metrics.seed004), media_type=CONTENT_TYPE_LATEST)

    async def ok(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/metrics", gateway),
            Route("/metrics/seed004", seed004),
            Route("/healthz", ok),
            Route("/readyz", ok),
        ],
        lifespan=lifespan,
    )


def address(env: dict[str, str]) -> tuple[str, int] | None:
    """Where the exporter listens (and nginx sends), or None: GATEWAY_METRICS_PORT is empty."""
    port = env.get("GATEWAY_METRICS_PORT", "").strip()
    if not port:
        return None
    return env.get("GATEWAY_METRICS_HOST", "127.0.0.1").strip() or "127.0.0.1", int(port)


def process(env: dict[str, str]) -> tuple[list[str], str] | None:
    """The command that runs this process for `make run`, and where it answers /readyz."""
    where = address(env)
    if where is None:
        return None
    host, port = where
    argv = [sys.executable, __file__, "--host", host, "--port", str(port)]
    return argv, (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=os.environ.get("GATEWAY_METRICS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=os.environ.get("GATEWAY_METRICS_PORT", "8005"))
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format='{"level": "%(levelname)s", "msg": "%(message)s"}'
    )
    uvicorn.run(
        create_app(args.host, args.port),
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
