"""Run as a process of its own: an outbox relay over one database, until it is killed."""

from __future__ import annotations

import asyncio
import sys

from auth_service.models import outbox
from shared.broker import build_broker, connect_until_up
from shared.db import create_engine
from shared.outbox import OutboxRelay


async def main(database_url: str, amqp_url: str) -> None:
    engine = create_engine(database_url)
    broker = build_broker(amqp_url, service="relay")
    await connect_until_up(broker)
    sys.stdout.write("relaying\n")
    sys.stdout.flush()
    await OutboxRelay(engine=engine, table=outbox, broker=broker, batch_size=200).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
