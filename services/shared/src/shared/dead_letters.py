"""Dead letters an operator can inspect before acting: list them (type, order, error,
attempts), show one, discard one or all, replay one or all into the queue they failed in,
with progress and a summary (docs/operations.md). Each service's CLI has `dead-letters` for
its own queues (`shared.dead_letter_cli`); `make dead-letters` runs them all.

Only the messages in a dead-letter queue when a command starts are looked at. Reading one
takes it from the queue unacknowledged: what a command does not discard or replay goes back
when it ends (the channel closes), so a crash half-way loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from shared.topology import DELIVERY_LIMIT, consumer_queue, dead_letter_queue

Report = Callable[[str], None]


@dataclass(frozen=True)
class DeadLetter:
    queue: str  # the consumer queue's base name (`order_query.orders`)
    id: str  # the message id (the event's, the timer's), else a hash of the body
    type: str
    order: str
    error: str
    attempts: str
    failed_at: str
    invalid: bool  # the body itself cannot be read: a replay cannot help
    headers: dict[str, Any] = field(repr=False)
    body: bytes = field(repr=False)

    @classmethod
    def of(cls, queue: str, message: AbstractIncomingMessage) -> DeadLetter:
        headers = dict(message.headers or {})
        try:
            content = json.loads(message.body)
        except ValueError:
            content = None
        fields = content if isinstance(content, dict) else {}
        payload = fields.get("payload") if isinstance(fields.get("payload"), dict) else {}
        death = _first_death(headers)
        error = headers.get("x-error") or (
            f"not recorded: the broker dead-lettered it ({death.get('reason', 'unknown')})"
        )
        return cls(
            queue=queue,
            id=message.message_id or hashlib.sha256(message.body).hexdigest()[:16],
            type=str(fields.get("type") or ("(not JSON)" if content is None else "?")),
            order=str(fields.get("aggregate_id") or (payload or {}).get("order_id") or "-"),
            error=_text(error),
            attempts=_text(headers.get("x-attempts") or _attempts_by_broker(death)),
            failed_at=_text(headers.get("x-failed-at") or death.get("time") or "?"),
            invalid=_text(headers.get("x-invalid")) == "true" or content is None,
            headers=headers,
            body=message.body,
        )

    def line(self) -> str:
        mark = " [invalid]" if self.invalid else ""
        error = " / ".join(line.strip() for line in self.error.splitlines()[:2])
        return (
            f"{self.id}  {self.type}  order {self.order}  attempts {self.attempts}  "
            f"at {self.failed_at}{mark}\n    {error[:200]}"
        )

    def details(self) -> str:
        try:
            body = json.dumps(json.loads(self.body), indent=2)
        except ValueError:
            body = repr(self.body[:2000])
        headers = json.dumps(self.headers, indent=2, default=str)
        queue = dead_letter_queue(self.queue).name
        return (
            f"{self.line()}\nqueue: {queue}\nerror: {self.error}\nheaders: {headers}\nbody: {body}"
        )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _attempts_by_broker(death: dict[str, Any]) -> str:
    """The broker dead-letters at the delivery limit: that many redeliveries, and the first."""
    return str(DELIVERY_LIMIT + 1) if death.get("reason") == "delivery_limit" else "?"


def _first_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return {str(k): _text(v) for k, v in deaths[0].items()}
    return {}


@contextlib.asynccontextmanager
async def _channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        yield await connection.channel(publisher_confirms=True)
    finally:
        await connection.close()  # what was read and not acked goes back to its queue


async def _taken(channel: AbstractChannel, name: str) -> list[AbstractIncomingMessage]:
    """Every message in `name`'s DLQ when called, held unacknowledged on `channel`."""
    dlq = await channel.declare_queue(dead_letter_queue(name).name, passive=True)
    waiting = dlq.declaration_result.message_count or 0
    taken: list[AbstractIncomingMessage] = []
    while len(taken) < waiting:
        message = await dlq.get(no_ack=False, fail=False)
        if message is None:
            break
        taken.append(message)
    return taken


async def listed(amqp_url: str, names: Sequence[str]) -> list[DeadLetter]:
    async with _channel(amqp_url) as channel:
        found = []
        for name in names:
            found += [DeadLetter.of(name, message) for message in await _taken(channel, name)]
        return found


@dataclass
class Outcome:
    replayed: int = 0
    discarded: int = 0
    left_invalid: list[str] = field(default_factory=list)
    matched: int = 0


async def act(
    amqp_url: str,
    names: Sequence[str],
    *,
    action: str,
    ids: set[str] | None,
    report: Report,
    include_invalid: bool = False,
) -> Outcome:
    """Replay or discard the dead letters of `names` whose id is in `ids` (None: all). With
    all, invalid messages (which no replay can help) are left unless `include_invalid`."""
    assert action in {"replay", "discard"}
    outcome = Outcome()
    async with _channel(amqp_url) as channel:
        for name in names:
            taken = await _taken(channel, name)
            chosen = [m for m in taken if ids is None or DeadLetter.of(name, m).id in ids]
            target = consumer_queue(name, "").name
            if chosen:
                report(f"{dead_letter_queue(name).name}: {len(chosen)} to {action}")
            for done, message in enumerate(chosen, start=1):
                letter = DeadLetter.of(name, message)
                outcome.matched += 1
                if action == "replay" and letter.invalid and ids is None and not include_invalid:
                    outcome.left_invalid.append(letter.id)
                    continue
                if action == "replay":
                    await republish(channel, message, target)
                    outcome.replayed += 1
                else:
                    outcome.discarded += 1
                await message.ack()
                if done % 100 == 0 or done == len(chosen):
                    report(f"  {done}/{len(chosen)}")
    return outcome


async def republish(channel: AbstractChannel, message: AbstractIncomingMessage, to: str) -> None:
    """Into the queue `to`, by the default exchange, without the broker's or our notes
    (`x-*`): a fresh message with a fresh delivery count. On a channel with publisher
    confirms, it returns once the broker confirmed it: ack the message only after."""
    headers = {k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")}
    await channel.default_exchange.publish(
        aio_pika.Message(
            message.body,
            headers=headers,
            message_id=message.message_id,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=to,
    )


async def replay(amqp_url: str, name: str, *, report: Report) -> int:
    """Every dead letter of `name` back into its queue but the invalid ones; how many."""
    outcome = await act(amqp_url, [name], action="replay", ids=None, report=report)
    left = ""
    if outcome.left_invalid:
        left = (
            f"; left {len(outcome.left_invalid)} that cannot be read (a replay cannot help; "
            "see them with `dead-letters list`, drop them with `dead-letters discard`)"
        )
    target = consumer_queue(name, "").name
    report(
        f"done: {outcome.replayed} message(s) moved from {dead_letter_queue(name).name} "
        f"to {target}{left}"
    )
    return outcome.replayed
