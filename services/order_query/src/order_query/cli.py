"""`order-query serve | rebuild | dead-letters | replay-dead-letters`: serve reads; repair the
projection; inspect and act on the consumers' dead letters."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys

import httpx

from order_query.connections import connect_auth, connect_command_side, connect_redis
from order_query.queues import ORDERS_QUEUE, USERS_QUEUE
from order_query.rebuild import RebuildRunning, rebuild
from order_query.settings import OrderQuerySettings
from shared.cli import Command, ServiceCli, say


def _rebuild(args: argparse.Namespace, settings: OrderQuerySettings) -> int:
    # A replay makes millions of containers that reference counting frees, and hardly a
    # cycle: the cyclic collector, left on, took a fifth of the command's CPU (decision 105).
    gc.disable()
    return asyncio.run(rebuild_projection(settings))


# `replay-dead-letters --queue`: orders (the default), users.
QUEUES = {"orders": ORDERS_QUEUE, "users": USERS_QUEUE}

CLI = ServiceCli(
    prog="order-query",
    service="order_query",
    description=__doc__ or "",
    settings=OrderQuerySettings,
    serve_help="serve reads on ORDER_QUERY_HOST:ORDER_QUERY_PORT and "
    "keep the projection from the order events",
    address=lambda s: (s.order_query_host, s.order_query_port),
    dead_letter_queues=list(QUEUES.values()),
    replay_queues=QUEUES,
    commands=[
        Command(
            "rebuild",
            "rebuild the projection from the event logs, while the service keeps answering",
            _rebuild,
        )
    ],
)
main = CLI.main


async def rebuild_projection(settings: OrderQuerySettings) -> int:
    redis = connect_redis(settings)
    try:
        async with httpx.AsyncClient() as http:
            await rebuild(
                redis,
                orders=connect_command_side(settings, http, timeout=30.0),
                users=connect_auth(settings, http, timeout=30.0),
                report=say,
            )
    except RebuildRunning as exc:
        say(f"error: {exc}")
        return 1
    finally:
        await redis.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
