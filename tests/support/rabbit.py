"""A queue of the test's own on an exchange, to see what a service really published."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aio_pika


class Captured:
    def __init__(self) -> None:
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []
        self._arrived = asyncio.Condition()

    async def add(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.messages]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The first body that satisfies `predicate`, waiting up to `timeout` seconds."""

        async def found() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    for body in self.bodies():
                        if predicate(body):
                            return body
                    await self._arrived.wait()

        return await asyncio.wait_for(found(), timeout)


@contextlib.asynccontextmanager
async def capture(url: str, exchange: str, routing_key: str) -> AsyncIterator[Captured]:
    connection = await aio_pika.connect_robust(url)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(ex, routing_key)
        captured = Captured()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                await captured.add(message)

        await queue.consume(on_message)
        yield captured
    finally:
        await connection.close()


async def purge(url: str, queues: list[str]) -> None:
    """Empty the queues of `queues` that exist (a missing one is left missing)."""
    connection = await aio_pika.connect_robust(url)
    try:
        for name in queues:
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                continue
            await queue.purge()
            await channel.close()
    finally:
        await connection.close()
