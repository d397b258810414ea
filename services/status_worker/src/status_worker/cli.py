"""`status-worker serve | replay-dead-letters`: the command compose and `make run` start, and
the one that puts dead-lettered messages back once their cause is fixed."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared import dead_letter_cli, dead_letters
from shared.logs import setup_logging
from shared.server import serve
from status_worker import topology
from status_worker.settings import StatusWorkerSettings

QUEUES = {"due": topology.DUE, "events": topology.EVENTS, "results": topology.RESULTS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="status-worker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve /healthz, /readyz, /metrics on STATUS_WORKER_HOST:STATUS_WORKER_PORT; "
        "set and fire the lifecycle timers",
    )
    replay = commands.add_parser(
        "replay-dead-letters",
        help="move dead-lettered messages back to their queue (due: timers, which fire at once)",
    )
    replay.add_argument("--queue", choices=sorted(QUEUES), default="due")
    dead_letter_cli.add_parser(commands)
    args = parser.parse_args(argv)

    settings = StatusWorkerSettings()
    setup_logging("status_worker", settings.log_level)
    if args.command == "dead-letters":
        url = settings.rabbitmq_url.get_secret_value()
        return dead_letter_cli.run(args, url, list(QUEUES.values()), _say)
    if args.command == "replay-dead-letters":
        url = settings.rabbitmq_url.get_secret_value()
        asyncio.run(dead_letters.replay(url, QUEUES[args.queue], report=_say))
        return 0
    serve(
        "status_worker.main:create_app",
        service="status_worker",
        host=settings.status_worker_host,
        port=settings.status_worker_port,
    )
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
