"""The outbox relay: publishes unsent rows with publisher confirms and marks them sent.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several relays (one per service process)
share the work and never publish the same row at once. A row is marked sent only after the
broker confirmed it; a crash between the confirm and the commit publishes it again, which
consumers tolerate (at-least-once). `LISTEN outbox` wakes the relay as soon as a writer
commits; a poll every `poll_interval` covers a lost notification or a dropped listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

import asyncpg
from faststream.rabbit import RabbitBroker
from opentelemetry import propagate, trace
from sqlalchemy import Table, and_, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import asyncpg_dsn
from shared.outbox.table import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class OutboxRelay:
    def __init__(
        self,
        *,
        engine: AsyncEngine,
        table: Table,
        broker: RabbitBroker,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        publish_timeout: float = 5.0,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self.engine = engine
        self.table = table
        self.broker = broker
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.publish_timeout = publish_timeout
        self.retention = retention
        self._wake = asyncio.Event()

    async def run(self) -> None:
        """Relay until cancelled. Faults (Postgres or RabbitMQ down) are waited out, not raised."""
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                try:
                    published = await self.publish_batch()
                    if loop.time() - last_prune > 60:
                        await self.prune()
                        last_prune = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a dependency is down: wait, then try again
                    log.warning("outbox relay: %s: %s", type(exc).__name__, exc)
                    published = 0
                if published < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_batch(self) -> int:
        """Publish up to `batch_size` unsent rows, oldest first. Returns how many were claimed."""
        t = self.table
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(
                        t.c.id, t.c.event_id, t.c.exchange, t.c.routing_key, t.c.body, t.c.headers
                    )
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            outcomes = await asyncio.gather(
                *(self._publish(row) for row in rows), return_exceptions=True
            )
            sent = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
            failed = [
                {"row_id": row.id, "error": f"{type(outcome).__name__}: {outcome}"[:500]}
                for row, outcome in zip(rows, outcomes, strict=True)
                if outcome is not None
            ]
            if sent:
                await conn.execute(
                    update(t).where(t.c.id.in_(sent)).values(published_at=func.now())
                )
            if failed:
                await conn.execute(
                    update(t)
                    .where(t.c.id == bindparam("row_id"))
                    .values(attempts=t.c.attempts + 1, last_error=bindparam("error")),
                    failed,
                )
                log.warning(
                    "outbox relay: %d of %d not confirmed; retrying them", len(failed), len(rows)
                )
        return len(rows)

    async def _publish(self, row: Any) -> None:
        parent = propagate.extract(row.headers or {})
        with tracer.start_as_current_span(
            f"{row.routing_key} publish", context=parent, kind=trace.SpanKind.PRODUCER
        ) as span:
            span.set_attribute("messaging.system", "rabbitmq")
            span.set_attribute("messaging.destination.name", row.exchange)
            span.set_attribute("messaging.rabbitmq.destination.routing_key", row.routing_key)
            span.set_attribute("messaging.message.id", str(row.event_id))
            headers: dict[str, Any] = {}
            propagate.inject(headers)
            await asyncio.wait_for(
                self.broker.publish(
                    json.dumps(row.body).encode(),
                    exchange=row.exchange,
                    routing_key=row.routing_key,
                    headers=headers,
                    message_id=str(row.event_id),
                    content_type="application/json",
                    persist=True,
                    mandatory=False,
                ),
                self.publish_timeout,
            )

    async def prune(self) -> int:
        """Delete rows sent longer than `retention` ago, so the table does not grow for ever."""
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(t).where(
                    and_(
                        t.c.published_at.is_not(None),
                        t.c.published_at < func.now() - self.retention,
                    )
                )
            )
        return int(result.rowcount or 0)

    async def _listen(self) -> None:
        """Hold a LISTEN connection; on any fault, reconnect after a pause (polling covers it)."""
        dsn = asyncpg_dsn(self.engine.url.render_as_string(hide_password=False))
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())
                self._wake.set()  # catch anything written while we were not listening
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("outbox listener: %s", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(self.poll_interval)
