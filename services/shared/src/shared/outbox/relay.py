"""The outbox relay: publishes unsent rows with publisher confirms and marks them sent.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several relays (one per service process)
share the work and never publish the same row at once. A row is marked sent only after the
broker confirmed it; a crash between the confirm and the commit publishes it again, which
consumers tolerate (at-least-once). `LISTEN outbox` wakes the relay as soon as a writer
commits; a poll every `poll_interval` covers a lost notification.

It is the platform's hottest loop (every event of every service goes through it), so it holds
one connection to each server and speaks to them through their drivers: an asyncpg connection
that listens and claims and marks the rows, and an aio-pika channel in confirm mode. A batch
costs four round trips to Postgres whatever its size, and each event one publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractExchange
from opentelemetry import propagate, trace

from shared.db import asyncpg_dsn
from shared.faults import stopping
from shared.outbox.table import NOTIFY_CHANNEL
from shared.topology import EXCHANGES

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

PRUNE_EVERY = 60.0  # seconds between two prunes of sent rows

_CLAIM = """
    select id, event_id, exchange, routing_key, body::text as body, headers::text as headers
    from outbox where published_at is null order by id limit $1 for update skip locked
"""
_MARK_SENT = "update outbox set published_at = clock_timestamp() where id = any($1::bigint[])"
_MARK_FAILED = """
    update outbox set attempts = attempts + 1, last_error = f.error
    from unnest($1::bigint[], $2::text[]) as f(id, error) where outbox.id = f.id
"""
_PRUNE = """
    delete from outbox
    where published_at is not null and published_at < now() - $1::interval
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


class OutboxRelay:
    def __init__(
        self,
        *,
        database_url: str,
        amqp_url: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        retention: timedelta = timedelta(days=7),
        retry_every: float = 2.0,
    ) -> None:
        """`database_url` is the service's SQLAlchemy URL; its database holds `outbox`."""
        self.dsn = asyncpg_dsn(database_url)
        self.amqp_url = amqp_url
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.retention = retention
        self.retry_every = retry_every
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Relay until cancelled. A server that is down is waited out, never raised."""
        loop = asyncio.get_running_loop()
        last_prune = -PRUNE_EVERY
        while True:
            try:
                async with self._connected() as (db, exchanges):
                    while True:
                        self._wake.clear()
                        published = await self._publish_batch(db, exchanges)
                        if loop.time() - last_prune >= PRUNE_EVERY:
                            await self._prune(db)
                            last_prune = loop.time()
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
                log.warning("outbox relay: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.retry_every)

    async def prune(self) -> int:
        """Delete rows sent longer than `retention` ago, so the table does not grow for ever."""
        db = await asyncpg.connect(self.dsn, timeout=5)
        try:
            return await self._prune(db)
        finally:
            await db.close()

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[tuple[asyncpg.Connection, Exchanges]]:
        # The relay's own writes (which rows are sent) need no flush to disk before it goes
        # on: if Postgres loses the last of them in a crash, those rows are published again,
        # which at-least-once delivery allows. The writers' commits stay synchronous.
        db = await asyncpg.connect(
            self.dsn,
            timeout=5,
            command_timeout=10,
            server_settings={"synchronous_commit": "off"},
        )
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
                yield db, exchanges
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(db.close(), 2)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_batch(self, db: asyncpg.Connection, exchanges: Exchanges) -> int:
        """Publish up to `batch_size` unsent rows, oldest first. Returns how many were claimed;
        raises when none of them was confirmed (the broker is gone: reconnect, after a pause)."""
        async with db.transaction():
            rows = await db.fetch(_CLAIM, self.batch_size)
            if not rows:
                return 0
            outcomes = await asyncio.gather(
                *(self._publish(exchanges, row) for row in rows), return_exceptions=True
            )
            sent = [row["id"] for row, outcome in zip(rows, outcomes, strict=True) if not outcome]
            failed = [
                (row["id"], f"{type(outcome).__name__}: {outcome}"[:500])
                for row, outcome in zip(rows, outcomes, strict=True)
                if outcome
            ]
            if sent:
                await db.execute(_MARK_SENT, sent)
            if failed:
                ids, errors = zip(*failed, strict=True)
                await db.execute(_MARK_FAILED, list(ids), list(errors))
                log.warning(
                    "outbox relay: %d of %d not confirmed; retrying them", len(failed), len(rows)
                )
        if failed and not sent:
            raise ConnectionError(f"no event confirmed; the first error: {failed[0][1]}")
        return len(rows)

    async def _publish(self, exchanges: Exchanges, row: Any) -> None:
        """Publish one row and wait for the broker's confirm (a nack raises)."""
        # The trace goes on from the request that wrote the row.
        parent = propagate.extract(json.loads(row["headers"]))
        with tracer.start_as_current_span(
            f"{row['routing_key']} publish", context=parent, kind=trace.SpanKind.PRODUCER
        ) as span:
            if span.is_recording():
                span.set_attribute("messaging.system", "rabbitmq")
                span.set_attribute("messaging.destination.name", row["exchange"])
                span.set_attribute("messaging.rabbitmq.destination.routing_key", row["routing_key"])
                span.set_attribute("messaging.message.id", str(row["event_id"]))
            headers: dict[str, Any] = {}
            propagate.inject(headers)
            exchange = await exchanges.get(row["exchange"])
            await exchange.publish(
                aio_pika.Message(
                    row["body"].encode(),
                    headers=headers,
                    message_id=str(row["event_id"]),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=row["routing_key"],
                mandatory=False,
                timeout=self.publish_timeout,
            )

    async def _prune(self, db: asyncpg.Connection) -> int:
        result = await db.execute(_PRUNE, self.retention)
        return int(result.split()[-1])  # "DELETE <count>"
