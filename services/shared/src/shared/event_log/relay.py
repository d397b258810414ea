"""The relay: publishes what the log holds and the broker has not confirmed, with publisher
confirms, and records what it sent (by deleting its bookkeeping row).

Rows of `unpublished_events` are claimed with `FOR UPDATE SKIP LOCKED`, so several relays
(each a process of its own, `<service> relay`) share the work and never publish the same
event at once. A row is deleted only after the broker confirmed its event; a crash between
the confirm and the commit publishes it again, which consumers tolerate (at-least-once).
`LISTEN event_log` wakes the relay as soon as a writer commits; a poll every `poll_interval`
covers a lost notification.

It is the platform's hottest loop (every event of every service goes through it), so it holds
one connection to each server and speaks to them through their drivers: an asyncpg connection
that listens, claims and deletes, and an aio-pika channel in confirm mode. The message body,
the event's envelope, is built by Postgres from the row (json_build_object): no Python
parsing or serialising per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractExchange
from opentelemetry import propagate, trace

from shared.db import asyncpg_dsn
from shared.event_log.metrics import RelayMetrics
from shared.event_log.table import NOTIFY_CHANNEL
from shared.events import exchange_of
from shared.faults import stopping
from shared.topology import EXCHANGES

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

_CLAIM = """
    select u.position, e.event_id, e.type, e.trace::text as trace,
           extract(epoch from clock_timestamp() - e.recorded_at)::float8 as age,
           json_build_object(
               'event_id', e.event_id, 'type', e.type, 'schema_version', e.schema_version,
               'occurred_at', e.occurred_at, 'aggregate_id', e.aggregate_id,
               'version', e.version, 'payload', e.payload
           )::text as body
    from unpublished_events u join event_log e using (position)
    order by u.position limit $1
    for update of u skip locked
"""
_SENT = "delete from unpublished_events where position = any($1::bigint[])"
_FAILED = """
    update unpublished_events set attempts = attempts + 1, last_error = f.error
    from unnest($1::bigint[], $2::text[]) as f(position, error)
    where unpublished_events.position = f.position
"""


class Exchanges:
    """The exchanges the relay publishes to, looked up once per connection."""

    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self.known: dict[str, AbstractExchange] = {}

    async def get(self, name: str) -> AbstractExchange:
        if name not in self.known:
            self.known[name] = await self.channel.get_exchange(name, ensure=False)
        return self.known[name]


class LogRelay:
    def __init__(
        self,
        *,
        database_url: str,
        amqp_url: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        retry_every: float = 0.5,
        metrics: RelayMetrics | None = None,
    ) -> None:
        """`database_url` is the service's SQLAlchemy URL; its database holds the log."""
        self.metrics = metrics
        self.dsn = asyncpg_dsn(database_url)
        self.amqp_url = amqp_url
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.retry_every = retry_every
        self._wake = asyncio.Event()
        self.connected = False  # to Postgres and RabbitMQ both, listening for appends

    async def run(self) -> None:
        """Relay until cancelled. A server that is down is waited out, never raised: tried
        again after 0.1 s, then twice as long each time up to `retry_every`, so a server that
        comes back is found again within a fraction of a second of a short outage."""
        pause = 0.1
        while True:
            try:
                async with self._connected() as (db, exchanges):
                    pause = 0.1
                    while True:
                        self._wake.clear()
                        published = await self._publish_batch(db, exchanges)
                        if published < self.batch_size:
                            # asyncio.timeout, not wait_for: on 3.11, wait_for swallows a
                            # cancel that lands as the event is set, and the relay never stops.
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(self.poll_interval):
                                    await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a server is down or went away: wait, then reconnect
                if stopping():
                    raise asyncio.CancelledError from exc
                log.warning("event log relay: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.retry_every)

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[tuple[asyncpg.Connection, Exchanges]]:
        db = await asyncpg.connect(self.dsn, timeout=5, command_timeout=10)
        try:
            amqp = await aio_pika.connect(self.amqp_url, timeout=5)
            async with amqp:
                channel = await amqp.channel(publisher_confirms=True)
                exchanges = Exchanges(channel)
                for exchange in EXCHANGES.values():  # as every service declares them
                    exchanges.known[exchange.name] = await channel.declare_exchange(
                        exchange.name, exchange.type.value, durable=exchange.durable
                    )
                await db.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self._wake.set()  # whatever was written while we were not listening
                self.connected = True
                yield db, exchanges
        finally:
            self.connected = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(db.close(), 2)

    async def require_connected(self) -> None:
        """A readiness check: raise unless the relay holds both servers."""
        if not self.connected:
            raise ConnectionError("the relay is not connected to Postgres and RabbitMQ")

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_batch(self, db: asyncpg.Connection, exchanges: Exchanges) -> int:
        """Publish up to `batch_size` unsent events, oldest first. Returns how many were
        claimed; raises when none was confirmed (the broker is gone: reconnect, after a pause)."""
        async with db.transaction():
            rows = await db.fetch(_CLAIM, self.batch_size)
            if not rows:
                return 0
            claimed = time.monotonic()
            outcomes = await asyncio.gather(
                *(self._publish(exchanges, row) for row in rows), return_exceptions=True
            )
            self._count(rows, outcomes, time.monotonic() - claimed)
            sent = [
                row["position"] for row, outcome in zip(rows, outcomes, strict=True) if not outcome
            ]
            failed = [
                (row["position"], f"{type(outcome).__name__}: {outcome}"[:500])
                for row, outcome in zip(rows, outcomes, strict=True)
                if outcome
            ]
            if sent:
                await db.execute(_SENT, sent)
            if failed:
                positions, errors = zip(*failed, strict=True)
                await db.execute(_FAILED, list(positions), list(errors))
                log.warning(
                    "event log relay: %d of %d not confirmed; retrying them", len(failed), len(rows)
                )
        if failed and not sent:
            raise ConnectionError(f"no event confirmed; the first error: {failed[0][1]}")
        return len(rows)

    def _count(self, rows: list[Any], outcomes: list[Any], publishing: float) -> None:
        if self.metrics is None:
            return
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome:
                self.metrics.failures.inc()
            else:
                self.metrics.published.labels(row["type"]).inc()
                self.metrics.lag.observe(row["age"] + publishing)

    async def _publish(self, exchanges: Exchanges, row: Any) -> None:
        """Publish one event and wait for the broker's confirm (a nack raises)."""
        # The trace goes on from the request that wrote the event.
        parent = propagate.extract(json.loads(row["trace"]))
        kind = row["type"]
        exchange_name = exchange_of(kind)
        with tracer.start_as_current_span(
            f"{kind} publish", context=parent, kind=trace.SpanKind.PRODUCER
        ) as span:
            if span.is_recording():
                span.set_attribute("messaging.system", "rabbitmq")
                span.set_attribute("messaging.destination.name", exchange_name)
                span.set_attribute("messaging.rabbitmq.destination.routing_key", kind)
                span.set_attribute("messaging.message.id", str(row["event_id"]))
            headers: dict[str, Any] = {}
            propagate.inject(headers)
            exchange = await exchanges.get(exchange_name)
            await exchange.publish(
                aio_pika.Message(
                    row["body"].encode(),
                    headers=headers,
                    message_id=str(row["event_id"]),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=kind,
                mandatory=False,
                timeout=self.publish_timeout,
            )
