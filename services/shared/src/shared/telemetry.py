"""OpenTelemetry from the standard `OTEL_*` variables; with none set, nothing is exported."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

log = logging.getLogger(__name__)


def setup_telemetry(service: str) -> TracerProvider:
    """Install the global tracer provider once per process and return it.

    `OTEL_TRACES_EXPORTER` picks the exporter (`otlp`, `console` or `none`); with it unset,
    `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) turns OTLP over HTTP on.

    With no exporter, spans are not sampled (unless `OTEL_TRACES_SAMPLER` says otherwise):
    trace ids are still made and carried through HTTP, the outbox and the broker, but no span
    is recorded only to be thrown away, which would cost every request a tenth of a
    millisecond.
    """
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    exporters = _exporters()
    sampled = exporters or os.environ.get("OTEL_TRACES_SAMPLER")
    provider = TracerProvider(resource=resource, sampler=None if sampled else ALWAYS_OFF)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def spans_recorded() -> bool:
    """Whether the installed tracer provider records spans (it does when it exports them)."""
    provider = trace.get_tracer_provider()
    return isinstance(provider, TracerProvider) and provider.sampler is not ALWAYS_OFF


def _exporters() -> list[SpanExporter]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not names:
        names = "otlp" if _otlp_endpoint() else "none"
    exporters: list[SpanExporter] = []
    for name in (n.strip() for n in names.split(",")):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            host = urlsplit(_otlp_endpoint() or "http://localhost:4318").hostname or "localhost"
            exporters.append(WhileCollectorResolves(OTLPSpanExporter(), host))
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
    return exporters


def _otlp_endpoint() -> str:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


class WhileCollectorResolves(SpanExporter):
    """Hands spans to `exporter` while the collector's host name resolves; drops them quietly
    (one log line) while it does not.

    docker compose names its collector (`jaeger`) only when the `traces` profile is on.
    Without it, an exporter would fail every batch and log a warning each time. A collector
    that appears later is used from the next batch after `recheck` seconds.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        host: str,
        *,
        recheck: float = 5.0,
        resolves: Callable[[str], bool] = _resolves,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exporter = exporter
        self.host = host
        self._recheck = recheck
        self._resolves = resolves
        self._clock = clock
        self._absent_until: float | None = None  # while absent: when to look again

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._absent_until is not None and self._clock() < self._absent_until:
            return SpanExportResult.FAILURE
        if not self._resolves(self.host):
            if self._absent_until is None:
                log.info("no trace collector at %s: spans are dropped until there is", self.host)
            self._absent_until = self._clock() + self._recheck
            return SpanExportResult.FAILURE
        if self._absent_until is not None:
            log.info("trace collector %s found: exporting spans", self.host)
            self._absent_until = None
        return self.exporter.export(spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)
