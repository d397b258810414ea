"""`order-command serve | migrate | wait-migrated | dead-letters`: the commands compose and
`make run` start, and the operator's over its consumer's dead letters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from order_command.consumers import QUEUE_NAME
from order_command.settings import OrderCommandSettings
from shared import dead_letter_cli
from shared.logs import setup_logging
from shared.server import serve

MIGRATIONS = Path(__file__).with_name("migrations")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="order-command", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve HTTP on ORDER_COMMAND_HOST:ORDER_COMMAND_PORT, "
        "consume order.advance_status, relay the outbox",
    )
    commands.add_parser("migrate", help="create the database if needed; migrate it to head")
    waiting = commands.add_parser(
        "wait-migrated",
        help="migrate nothing: wait until the database is at this version's head (exit 1 if "
        "not within --timeout); a Kubernetes init container, while the migration Job runs",
    )
    waiting.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    dead_letter_cli.add_parser(commands)
    args = parser.parse_args(argv)

    settings = OrderCommandSettings()
    setup_logging("order_command", settings.log_level)
    if args.command == "serve":
        serve(
            "order_command.main:create_app",
            service="order_command",
            host=settings.order_command_host,
            port=settings.order_command_port,
        )
    elif args.command == "dead-letters":
        url = settings.rabbitmq_url.get_secret_value()
        return dead_letter_cli.run(args, url, [QUEUE_NAME], print)
    elif args.command == "wait-migrated":
        url = settings.orders_database_url.get_secret_value()
        from shared.migrations import wait_until_migrated

        return 0 if wait_until_migrated(MIGRATIONS, url, timeout=args.timeout) else 1
    else:
        from shared.migrations import upgrade  # Alembic, for this command only

        upgrade(MIGRATIONS, settings.orders_database_url.get_secret_value())
    return 0


if __name__ == "__main__":
    sys.exit(main())
