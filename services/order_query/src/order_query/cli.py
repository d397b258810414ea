"""`order-query serve | rebuild | dead-letters | replay-dead-letters`: serve reads; repair the
projection; inspect and act on the consumers' dead letters."""

from __future__ import annotations

import argparse
import asyncio
import sys

import httpx

from order_query import consumers
from order_query.connections import connect_auth, connect_command_side, connect_redis
from order_query.rebuild import RebuildRunning, rebuild
from order_query.settings import OrderQuerySettings
from shared import dead_letter_cli, dead_letters
from shared.logs import setup_logging
from shared.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="order-query", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve reads on ORDER_QUERY_HOST:ORDER_QUERY_PORT and "
        "keep the projection from the order events",
    )
    commands.add_parser(
        "rebuild",
        help="rebuild the projection from the event logs, while the service keeps answering",
    )
    replay = commands.add_parser(
        "replay-dead-letters",
        help="move dead-lettered events back to their queue, but those that cannot be read",
    )
    replay.add_argument("--queue", choices=["orders", "users"], default="orders")
    dead_letter_cli.add_parser(commands)
    args = parser.parse_args(argv)

    settings = OrderQuerySettings()
    setup_logging("order_query", settings.log_level)
    if args.command == "serve":
        serve(
            "order_query.main:create_app",
            service="order_query",
            host=settings.order_query_host,
            port=settings.order_query_port,
        )
        return 0
    if args.command == "rebuild":
        return asyncio.run(rebuild_projection(settings))
    if args.command == "dead-letters":
        queues = [consumers.ORDERS_QUEUE, consumers.USERS_QUEUE]
        return dead_letter_cli.run(args, settings.rabbitmq_url.get_secret_value(), queues, _say)
    name = consumers.ORDERS_QUEUE if args.queue == "orders" else consumers.USERS_QUEUE
    asyncio.run(dead_letters.replay(settings.rabbitmq_url.get_secret_value(), name, report=_say))
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


async def rebuild_projection(settings: OrderQuerySettings) -> int:
    redis = connect_redis(settings)
    try:
        async with httpx.AsyncClient() as http:
            await rebuild(
                redis,
                orders=connect_command_side(settings, http, timeout=30.0),
                users=connect_auth(settings, http, timeout=30.0),
                report=_say,
            )
    except RebuildRunning as exc:
        _say(f"error: {exc}")
        return 1
    finally:
        await redis.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
