"""The faults, one at a time: each does its harm and says when the harm ended."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aio_pika

from chaos.stack import SERVICES, ChaosStack

BROKER_DOWN_FOR = 10.0  # seconds


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str  # kill, broker, postgres, redis
    act: Callable[[ChaosStack], Awaitable[str]]  # does the harm; returns what it did


def _kill(process: str) -> Callable[[ChaosStack], Awaitable[str]]:
    async def act(stack: ChaosStack) -> str:
        pid = stack.kill(process)
        return f"SIGKILL to {process} (pid {pid})"

    return act


PROBE = "chaos.probe"  # a quorum queue of the suite's own, to see when the broker serves again


async def _broker(stack: ChaosStack) -> str:
    assert stack.node is not None
    await _probe(stack.node.url, declare=True)
    await stack.stop_broker()
    stopped = time.monotonic()
    # The broker stays away for its time; the workload goes on meanwhile.
    while time.monotonic() - stopped < BROKER_DOWN_FOR:
        await asyncio.sleep(0.5)
    began = time.monotonic()
    await stack.start_broker()
    accepting = time.monotonic() - began
    serving = await _probe(stack.node.url)
    return (
        f"RabbitMQ stopped for {BROKER_DOWN_FOR:g} s, then started: {accepting:.1f} s to take "
        f"connections, {serving:.2f} s more until a quorum queue declared before took and gave "
        "back a message (the broker's own return)"
    )


async def _probe(url: str, *, declare: bool = False) -> float:
    """Seconds until a message published (confirmed) to the probe queue comes back out of it."""
    began = time.monotonic()
    while True:
        with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
            connection = await aio_pika.connect(url, timeout=5)
            async with connection:
                channel = await connection.channel(publisher_confirms=True)
                queue = await channel.declare_queue(
                    PROBE, durable=True, arguments={"x-queue-type": "quorum"}
                )
                if declare:
                    return 0.0
                await channel.default_exchange.publish(aio_pika.Message(b"probe"), PROBE)
                message = await queue.get(no_ack=True, fail=False, timeout=5)
                if message is not None:
                    return time.monotonic() - began
        await asyncio.sleep(0.05)


async def _postgres(stack: ChaosStack) -> str:
    cut = await stack.terminate_connections()
    return f"{cut} Postgres connections terminated"


async def _redis(stack: ChaosStack) -> str:
    await stack.flush_redis()
    code, last = await stack.rebuild()
    if code != 0:
        raise RuntimeError(f"order-query rebuild failed ({code}): {last}")
    return f"Redis flushed, then `order-query rebuild`: {last}"


def every_fault(round_: int) -> list[Fault]:
    """One fault of each kind; round 2 kills the other process of each service."""
    n = 1 + (round_ - 1) % 2
    kills = [Fault(f"kill -9 {s}.{n}", "kill", _kill(f"{s}.{n}")) for s in SERVICES]
    return [
        *kills,
        Fault("broker stopped 10 s", "broker", _broker),
        Fault("Postgres connections terminated", "postgres", _postgres),
        Fault("Redis flushed, then rebuilt", "redis", _redis),
    ]
