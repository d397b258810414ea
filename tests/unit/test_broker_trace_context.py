"""A message's trace context when no span is recorded: its handler runs in the trace of the
change that sent it, and what the handler publishes carries that trace on (the status worker's
command goes on in the trace of the request that created the order)."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitBroker, TestRabbitBroker
from faststream.rabbit.annotations import RabbitMessage
from opentelemetry import trace

from shared.broker import build_broker
from shared.telemetry import spans_recorded

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _broker() -> tuple[RabbitBroker, dict[str, Any]]:
    broker = build_broker("amqp://guest:guest@localhost:5672/", service="test")
    seen: dict[str, Any] = {}
    passed_on = broker.publisher("passed.on")

    @broker.subscriber("in")
    async def handle(body: dict[str, Any]) -> None:
        seen["trace_id"] = format(trace.get_current_span().get_span_context().trace_id, "032x")
        await passed_on.publish(body)

    @broker.subscriber("passed.on")
    async def received(body: dict[str, Any], message: RabbitMessage) -> None:
        seen["passed_on"] = message.headers

    return broker, seen


async def test_a_handler_runs_in_the_senders_trace_and_passes_it_on() -> None:
    assert not spans_recorded()  # the lean middleware, as in a process that exports nothing
    broker, seen = _broker()
    async with TestRabbitBroker(broker) as test:
        await test.publish({"n": 1}, "in", headers={"traceparent": TRACEPARENT})
    assert seen["trace_id"] == TRACE_ID
    assert seen["passed_on"]["traceparent"].split("-")[1] == TRACE_ID


async def test_a_message_without_a_trace_starts_one() -> None:
    broker, seen = _broker()
    async with TestRabbitBroker(broker) as test:
        await test.publish({"n": 1}, "in")
    assert int(seen["trace_id"], 16) != 0
    assert seen["passed_on"]["traceparent"].split("-")[1] == seen["trace_id"]
