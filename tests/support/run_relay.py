"""Run as a process of its own: an event log relay over one database, until it is killed."""

from __future__ import annotations

import asyncio
import sys

from shared.event_log import LogRelay


async def main(database_url: str, amqp_url: str) -> None:
    relay = LogRelay(database_url=database_url, amqp_url=amqp_url, batch_size=200)
    sys.stdout.write("relaying\n")
    sys.stdout.flush()
    await relay.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
