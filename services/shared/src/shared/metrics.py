"""Per-route Prometheus metrics, labelled by the route template and never by the raw path."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "<unmatched>"
# For a lag (the relay's publish, the projection's apply): milliseconds to minutes.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Not worth a series of their own: probes and the scrape itself.
_SKIPPED = frozenset({"/metrics", "/healthz", "/readyz"})


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["method", "route"]
        self.calls = Counter("http_calls", "Requests received", labels, registry=registry)
        self.successes = Counter(
            "http_successes", "Requests answered below 400", labels, registry=registry
        )
        self.failures = Counter(
            "http_failures",
            "Requests answered 400 or above",
            [*labels, "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to the response's first byte",
            labels,
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


class MetricsMiddleware:
    """Pure ASGI, so it costs a dictionary lookup and two counter bumps per request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED)
            if template not in _SKIPPED:
                labels = (scope["method"], template)
                self.metrics.calls.labels(*labels).inc()
                if status < 400:
                    self.metrics.successes.labels(*labels).inc()
                else:
                    self.metrics.failures.labels(*labels, str(status)).inc()
                self.metrics.latency.labels(*labels).observe(time.perf_counter() - start)
