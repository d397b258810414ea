"""The broker topology, declared once: exchanges, consumer queues and their dead-letter queues.

Consumer queues are quorum queues with manual acks. A message that keeps failing is
redelivered at most `DELIVERY_LIMIT` times, then dead-lettered (at least once) into the
queue's own `<name>.dlq`. The limit is part of a quorum queue's arguments and cannot change
once declared, so it is part of the queue's name: a new limit is a new queue.

Delayed messages need no broker plugin: a delay queue has no consumer and a message TTL, and
dead-letters (at least once) what expires into the queue that is due. The TTL is part of its
name for the same reason as the limit.
"""

from __future__ import annotations

from faststream.rabbit import ExchangeType, QueueType, RabbitBroker, RabbitExchange, RabbitQueue

DELIVERY_LIMIT = 5
DEAD_LETTERS = RabbitExchange("dead-letters", type=ExchangeType.DIRECT, durable=True)

AUTH_EVENTS = RabbitExchange("auth.events", type=ExchangeType.TOPIC, durable=True)
ORDERS_EVENTS = RabbitExchange("orders.events", type=ExchangeType.TOPIC, durable=True)
ORDERS_COMMANDS = RabbitExchange("orders.commands", type=ExchangeType.DIRECT, durable=True)

EXCHANGES = {exchange.name: exchange for exchange in (AUTH_EVENTS, ORDERS_EVENTS, ORDERS_COMMANDS)}


def consumer_queue(name: str, routing_key: str) -> RabbitQueue:
    """A durable quorum queue that dead-letters into `<name>.dlq` after the delivery limit."""
    return RabbitQueue(
        f"{name}.dl{DELIVERY_LIMIT}",
        queue_type=QueueType.QUORUM,
        routing_key=routing_key,
        arguments={
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTERS.name,
            "x-dead-letter-routing-key": name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def dead_letter_queue(name: str) -> RabbitQueue:
    return RabbitQueue(f"{name}.dlq", queue_type=QueueType.QUORUM, routing_key=name)


def delay_queue(name: str, delay: float, *, due: RabbitQueue) -> RabbitQueue:
    """`<name>.<ms>ms`: a durable quorum queue where a message waits `delay` seconds, then is
    dead-lettered into `due` through the default exchange. Nothing consumes it.

    At-least-once dead-lettering keeps an expired message until `due` has confirmed it, so
    a broker restart loses none; RabbitMQ requires `reject-publish` overflow for it. Bind it
    to the messages it delays (or publish to it by its name), and declare `due` first.
    """
    milliseconds = round(delay * 1000)
    if milliseconds < 1:
        raise ValueError(f"a delay queue waits at least 1 ms, not {delay!r} s")
    return RabbitQueue(
        f"{name}.{milliseconds}ms",
        queue_type=QueueType.QUORUM,
        arguments={
            "x-message-ttl": milliseconds,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": due.name,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


async def declare_exchanges(broker: RabbitBroker) -> None:
    """Publishers declare every exchange they use, so a publish never hits a missing one."""
    await broker.declare_exchange(DEAD_LETTERS)
    for exchange in EXCHANGES.values():
        await broker.declare_exchange(exchange)


async def declare_dead_letter_queue(broker: RabbitBroker, name: str) -> None:
    """Declare `<name>.dlq` and bind it, before the consumer queue that dead-letters into it."""
    await broker.declare_exchange(DEAD_LETTERS)
    queue = await broker.declare_queue(dead_letter_queue(name))
    await queue.bind(DEAD_LETTERS.name, routing_key=name)
