"""`order-command serve | relay | migrate | wait-migrated | dead-letters`: the commands compose and
`make run` start, and the operator's over its consumer's dead letters."""

from __future__ import annotations

import sys
from pathlib import Path

from order_command.consumers import QUEUE_NAME
from order_command.settings import OrderCommandSettings
from shared.cli import ServiceCli

MIGRATIONS = Path(__file__).with_name("migrations")

CLI = ServiceCli(
    prog="order-command",
    service="order_command",
    description=__doc__ or "",
    settings=OrderCommandSettings,
    serve_help="serve HTTP on ORDER_COMMAND_HOST:ORDER_COMMAND_PORT, consume order.advance_status",
    address=lambda s: (s.order_command_host, s.order_command_port),
    database=lambda s: s.orders_database_url,
    relay_address=lambda s: (s.order_command_relay_host, s.order_command_relay_port),
    migrations=MIGRATIONS,
    dead_letter_queues=[QUEUE_NAME],
)
main = CLI.main

if __name__ == "__main__":
    sys.exit(main())
