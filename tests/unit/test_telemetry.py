"""Where spans go: the OTLP exporter only while its collector exists (compose's `traces`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from shared import telemetry
from shared.telemetry import WhileCollectorResolves


class RecordingExporter(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[Sequence[ReadableSpan]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(spans)
        return SpanExportResult.SUCCESS


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


SPANS: Sequence[ReadableSpan] = (ReadableSpan(name="create order"),)


def test_spans_are_dropped_with_one_log_line_while_the_collector_does_not_resolve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner, clock = RecordingExporter(), Clock()
    exporter = WhileCollectorResolves(inner, "jaeger", resolves=lambda _: False, clock=clock)
    with caplog.at_level(logging.INFO, logger="shared.telemetry"):
        for _ in range(5):
            assert exporter.export(SPANS) == SpanExportResult.FAILURE
            clock.now += 10
    assert inner.batches == []
    assert [r.getMessage() for r in caplog.records] == [
        "no trace collector at jaeger: spans are dropped until there is"
    ]


def test_a_collector_that_appears_later_gets_the_spans_after_the_recheck_interval() -> None:
    inner, clock = RecordingExporter(), Clock()
    answers = iter([False, True])
    exporter = WhileCollectorResolves(
        inner, "jaeger", recheck=5, resolves=lambda _: next(answers), clock=clock
    )
    exporter.export(SPANS)  # no collector yet
    clock.now = 4.9
    exporter.export(SPANS)  # not asked again before the recheck: dropped
    clock.now = 5.0
    assert exporter.export(SPANS) == SpanExportResult.SUCCESS
    assert inner.batches == [SPANS]


def test_an_otlp_endpoint_turns_on_an_exporter_that_watches_its_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318")
    [exporter] = telemetry._exporters()
    assert isinstance(exporter, WhileCollectorResolves)
    assert exporter.host == "jaeger"


def test_no_otel_variables_export_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ):
        monkeypatch.delenv(name, raising=False)
    assert telemetry._exporters() == []
