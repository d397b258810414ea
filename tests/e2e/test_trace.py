"""One trace per request, started at the gateway: the spans every process exports for it share
the trace id, and that id is the request id the gateway answered with. On the lifecycle
stack, whose services export their spans to a receiver of the test's own."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

import pytest

from tests.e2e.accounts import Account
from tests.e2e.stacks import LifecycleStack
from tests.support.otlp import Span
from tests.support.waiting import eventually

ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]
CREATED_EVENT = "orders.events.order.created process"  # a consumer's span of order.created
DUE_EVENT = "default.status_worker.due.dl5 process"  # the worker's span of it, when due
ADVANCE_COMMAND = "orders.commands.order.advance_status process"


def _ancestors(span: Span, spans: list[Span]) -> list[Span]:
    """`span`'s parent, its parent's parent, ... as far as the recorded spans go."""
    by_id = {s.span_id: s for s in spans}
    chain = []
    while (parent := by_id.get(span.parent_span_id)) is not None:
        chain.append(parent)
        span = parent
    return chain


def _named(spans: list[Span], service: str, kind: str, name: str) -> list[Span]:
    return [s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)]


def _one(spans: list[Span], service: str, kind: str, name: str) -> Span:
    found = _named(spans, service, kind, name)
    assert len(found) == 1, f"{len(found)} spans {service} {kind} {name!r}, of {len(spans)}"
    return found[0]


async def _trace(stack: LifecycleStack, trace_id: str, check: Callable[[list[Span]], None]) -> None:
    """Wait until the spans received for `trace_id` pass `check` (each service exports in
    batches, so a trace arrives in pieces); fail with `check`'s last complaint."""

    receiver = stack.spans
    assert receiver is not None, "spans are received only from a stack the tests start"

    async def received() -> list[Span]:
        spans = receiver.spans(trace_id)
        check(spans)
        return spans

    await eventually(received, until=lambda _: True, timeout=20, what=f"the trace {trace_id}")


async def test_one_create_is_one_trace_from_the_gateway_through_every_consumer(
    lifecycle_user: Account, lifecycle_stack: LifecycleStack
) -> None:
    created = await lifecycle_user.http.post("/orders", json={"items": ITEMS})
    assert created.status_code == 201, created.text
    request_id = created.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)

    def one_trace(spans: list[Span]) -> None:
        http = _one(spans, "order_command", "SERVER", "POST /orders")
        relayed = _one(spans, "order_command", "PRODUCER", "order.created publish")
        projected = _one(spans, "order_query", "CONSUMER", CREATED_EVENT)
        timed = _one(spans, "status_worker", "CONSUMER", DUE_EVENT)
        # The HTTP span's parent is the gateway's: of this trace, and recorded by no service.
        assert http.parent_span_id, "order_command's HTTP span started a trace of its own"
        assert http.parent_span_id not in {s.span_id for s in spans}
        # The relay published the outbox row in the request's context...
        assert http in _ancestors(relayed, spans), "the relay's publish is not the request's"
        # ... each consumer took that event in the publish's (the worker an interval later,
        # when the wait queue dead-lettered it into the due queue) ...
        for consumer in (projected, timed):
            assert relayed in _ancestors(consumer, spans), f"{consumer.service} lost the trace"
            event_id = consumer.attributes["messaging.message.id"]
            assert event_id == relayed.attributes["messaging.message.id"]
        # ... and the timer's command came back to order_command.
        commands = _named(spans, "order_command", "CONSUMER", ADVANCE_COMMAND)
        assert any(timed in _ancestors(command, spans) for command in commands), (
            "the timer's command is not in the trace (yet)"
        )

    # The gateway started the trace with its request id as the trace id.
    await _trace(lifecycle_stack, request_id, one_trace)


def _served_by_order_query(spans: list[Span]) -> Span:
    return _one(spans, "order_query", "SERVER", "GET /orders")


async def test_a_clients_own_traceparent_goes_on_unchanged(
    lifecycle_user: Account, lifecycle_stack: LifecycleStack
) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    listed = await lifecycle_user.http.get(
        "/orders", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}
    )
    assert listed.status_code == 200, listed.text
    assert listed.headers["x-request-id"] != trace_id  # the request id stays the gateway's

    def continued(spans: list[Span]) -> None:
        assert _served_by_order_query(spans).parent_span_id == parent_id

    await _trace(lifecycle_stack, trace_id, continued)


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-not-a-trace",
        f"00-{'0' * 32}-{'b' * 16}-01",  # an all-zero trace id
        f"00-{'a' * 32}-{'0' * 16}-01",  # an all-zero parent id
        f"ff-{'a' * 32}-{'b' * 16}-01",  # version ff is invalid
        f"00-{'a' * 32}-{'b' * 16}-01-more",  # version 00 has exactly four fields
        f"00-{'a' * 32}-{'b' * 16}-01" + "x" * 6000,
    ],
)
async def test_a_malformed_traceparent_is_replaced_by_the_gateways(
    lifecycle_user: Account, lifecycle_stack: LifecycleStack, traceparent: str
) -> None:
    listed = await lifecycle_user.http.get(
        "/orders", headers={"traceparent": traceparent, "tracestate": "vendor=value"}
    )
    assert listed.status_code == 200, listed.text

    def started_at_the_gateway(spans: list[Span]) -> None:
        assert _served_by_order_query(spans).parent_span_id

    await _trace(lifecycle_stack, listed.headers["x-request-id"], started_at_the_gateway)


async def test_a_clients_request_id_shaped_like_a_trace_id_names_the_trace(
    lifecycle_user: Account, lifecycle_stack: LifecycleStack
) -> None:
    request_id = secrets.token_hex(16)
    listed = await lifecycle_user.http.get("/orders", headers={"X-Request-ID": request_id})
    assert listed.status_code == 200, listed.text
    assert listed.headers["x-request-id"] == request_id

    def started_at_the_gateway(spans: list[Span]) -> None:
        assert _served_by_order_query(spans).parent_span_id

    await _trace(lifecycle_stack, request_id, started_at_the_gateway)
