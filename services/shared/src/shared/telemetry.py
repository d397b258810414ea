"""OpenTelemetry from the standard `OTEL_*` variables; with none set, nothing is exported."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF


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


def _exporters() -> list[SpanExporter]:
    names = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not names:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else "none"
    exporters: list[SpanExporter] = []
    for name in (n.strip() for n in names.split(",")):
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
    return exporters
