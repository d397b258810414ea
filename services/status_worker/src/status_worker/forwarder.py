"""status_worker's forwarder: an order event that has waited its interval in the wait queue
becomes the command to move its order on. It acks the event only after the broker confirmed
the command, so a crash anywhere sends a timer twice at worst, never loses one (the second
finds the order moved on and does nothing).

It is the worker's whole job and its hot loop, so, like the event log's relay, it speaks
aio-pika itself on a connection of its own (decision 116): FastStream's consume and publish
around this rule cost the worker more than the rule and the broker's round trips together.
What FastStream gives the other consumers is here too: the trace carried through, a
dependency that is away waited out holding the message (`shared.faults.wait_out_faults`), a
message that fails its last delivery dead-lettered with its error (`shared.dead_lettering`),
and a stop that lets the handlers in flight finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from faststream.rabbit import RabbitQueue
from opentelemetry import propagate, trace
from pydantic import TypeAdapter

from shared.broker import PREFETCH
from shared.confirms import require_confirm
from shared.dead_lettering import is_last_delivery, letter_headers, log_dead_lettered
from shared.faults import stopping, wait_out_faults
from shared.topology import DEAD_LETTERS, ORDERS_COMMANDS
from status_worker.metrics import TimerMetrics
from status_worker.timers import Due, command_for

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DUE = TypeAdapter(Due)
PUBLISH_TIMEOUT = 10.0  # seconds for the broker's confirm; then the handler tries again
GRACE = 10.0  # seconds the handlers in flight have to finish at a stop


class DueForwarder:
    def __init__(
        self,
        amqp_url: str,
        due: RabbitQueue,
        metrics: TimerMetrics,
        *,
        prefetch: int = PREFETCH,
        retry_every: float = 0.5,
    ) -> None:
        self.amqp_url = amqp_url
        self.due = due
        self.metrics = metrics
        self.prefetch = prefetch
        self.retry_every = retry_every
        self.consuming = False
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        """Forward until cancelled. A broker that is away, or a due queue not declared yet
        (the worker's start declares it beside), is waited out, never raised."""
        pause = 0.1
        while True:
            try:
                await self._consume_until_closed()
                pause = 0.1  # it consumed until its channel closed: the next try starts over
            except asyncio.CancelledError:
                raise
            except aio_pika.exceptions.ChannelNotFoundEntity:
                log.info("waiting for %s to be declared", self.due.name)
            except Exception as exc:
                if stopping():
                    raise asyncio.CancelledError from exc
                log.warning("timer forwarder: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.retry_every)

    async def require_consuming(self) -> None:
        """A readiness check: raise unless the forwarder consumes the due queue."""
        if not self.consuming:
            raise ConnectionError(f"not consuming {self.due.name}")

    async def _consume_until_closed(self) -> None:
        connection = await aio_pika.connect(self.amqp_url, timeout=5)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=self.prefetch)
            queue = await channel.get_queue(self.due.name, ensure=True)
            commands = await channel.get_exchange(ORDERS_COMMANDS.name, ensure=False)
            dead_letters = await channel.get_exchange(DEAD_LETTERS.name, ensure=False)

            async def on_due(message: AbstractIncomingMessage) -> None:
                await self.handle(message, commands, dead_letters)

            tag = await queue.consume(on_due)
            self.consuming = True
            try:
                await channel.closed()
            finally:
                self.consuming = False
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(queue.cancel(tag), 2)
                await self._finish_in_flight()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2)

    async def _finish_in_flight(self) -> None:
        """What has been delivered finishes, within GRACE; what has not is cancelled (its
        message, unsettled, comes again)."""
        if self._in_flight:
            _, late = await asyncio.wait(self._in_flight, timeout=GRACE)
            for task in late:
                task.cancel()

    async def handle(
        self,
        message: AbstractIncomingMessage,
        commands: AbstractExchange,
        dead_letters: AbstractExchange,
    ) -> None:
        """One due message: its command sent and confirmed, then the message acked; or, if
        that fails, the message redelivered or, on its last delivery, dead-lettered."""
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            # Named and marked as FastStream's consumers name theirs (a queue reached through
            # the default exchange), so a trace reads the same whoever consumed.
            with tracer.start_as_current_span(
                f"default.{self.due.name} process",
                context=propagate.extract(message.headers),
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation": "process",
                    "messaging.message.id": message.message_id or "",
                },
            ):
                try:
                    await self._forward(message.body, commands)
                except Exception as exc:
                    await self._failed(message, exc, dead_letters)
                else:
                    await message.ack()
        except (aio_pika.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError) as exc:
            # the channel went before the message was settled: the broker delivers it again
            log.info("a due message was not settled (%s); it comes again", type(exc).__name__)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    @wait_out_faults
    async def _forward(self, body: bytes, commands: AbstractExchange) -> None:
        timer = command_for(DUE.validate_json(body))
        if timer is None:
            return
        headers: dict[str, Any] = {}
        propagate.inject(headers)
        confirmation = await commands.publish(
            aio_pika.Message(
                timer.model_dump_json().encode(),
                content_type="application/json",
                message_id=str(timer.event_id),
                headers=headers,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=timer.type,
            mandatory=True,
            timeout=PUBLISH_TIMEOUT,
        )
        require_confirm(confirmation, f"order.advance_status for order {timer.aggregate_id}")
        self.metrics.fired.inc()
        # DEBUG: order_command logs what each timer did (moved the order, or found it stale)
        # at INFO, and timers_fired_total counts them (decision 114).
        log.debug(
            "timer due: asked order_command to move order %s on from %s",
            timer.aggregate_id,
            timer.payload.expected_status.value,
            extra={"event": "timer.fired", "order_id": str(timer.aggregate_id)},
        )

    async def _failed(
        self, message: AbstractIncomingMessage, exc: Exception, dead_letters: AbstractExchange
    ) -> None:
        """Redelivered, up to the due queue's delivery limit; on the last delivery it is
        dead-lettered here with its error, or, should that fail, by the broker."""
        headers = dict(message.headers or {})
        if not is_last_delivery(headers):
            log.warning("a due message failed (%s); it comes again", type(exc).__name__)
            await message.nack(requeue=True)
            return
        route = str((self.due.arguments or {})["x-dead-letter-routing-key"])
        try:
            confirmation = await dead_letters.publish(
                aio_pika.Message(
                    message.body,
                    content_type=message.content_type,
                    message_id=message.message_id,
                    headers=letter_headers(headers, exc, self.due.name),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=route,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT,
            )
            require_confirm(confirmation, f"dead letter {message.message_id}")
        except Exception:
            log.warning("could not dead-letter %s itself; the broker will", message.message_id)
            await message.nack(requeue=True)
            return
        log_dead_lettered(message.message_id, self.due.name, headers, exc)
        await message.ack()
