"""Every service's command line, declared once: `serve`; where the service has them, `migrate`
and `wait-migrated` (its database), `relay` (its event log's relay, a process of its own),
`dead-letters` and `replay-dead-letters` (its consumers' dead letters); then the service's
own commands. A service's cli.py declares a ServiceCli.

Each command imports what it uses when it runs: a serving process does not carry Alembic, and
an operator's command (`order-query rebuild`) does not load the web server or the broker's
client before it starts its work.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import SecretStr

from shared import dead_letter_cli
from shared.logs import setup_logging
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def say(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Command(Generic[S]):
    """A command of the service's own: its arguments, and what it does (an exit status)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, S], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


@dataclass(frozen=True)
class ServiceCli(Generic[S]):
    prog: str  # the command's name: `order-command`
    service: str  # the package and the logs' name: `order_command`
    description: str
    settings: Callable[[], S]
    serve_help: str
    address: Callable[[S], tuple[str, int]]
    database: Callable[[S], SecretStr] | None = None
    # A writer of an event log: where its relay's process answers (its probes and /metrics).
    relay_address: Callable[[S], tuple[str, int]] | None = None
    migrations: Path | None = None
    # The consumers' queues (base names), and those `replay-dead-letters --queue` names.
    dead_letter_queues: Sequence[str] = ()
    replay_queues: Mapping[str, str] = field(default_factory=dict)
    commands: Sequence[Command[S]] = ()

    def main(self, argv: list[str] | None = None) -> int:
        args = self._parser().parse_args(argv)
        settings = self.settings()
        setup_logging(self.service, settings.log_level)
        url = settings.rabbitmq_url.get_secret_value()
        if args.command == "serve":
            from shared.server import serve

            host, port = self.address(settings)
            serve(f"{self.service}.main:create_app", service=self.service, host=host, port=port)
        elif args.command == "relay":
            self._relay(settings)
        elif args.command in ("migrate", "wait-migrated"):
            return self._migrate(args, settings)
        elif args.command == "dead-letters":
            return dead_letter_cli.run(args, url, self.dead_letter_queues, say)
        elif args.command == "replay-dead-letters":
            from shared import dead_letters

            asyncio.run(dead_letters.replay(url, self.replay_queues[args.queue], report=say))
        else:
            return next(c for c in self.commands if c.name == args.command).run(args, settings)
        return 0

    def _relay(self, settings: S) -> None:
        assert self.database is not None and self.relay_address is not None
        from shared.event_log.serving import relay_app
        from shared.server import serve

        url = self.database(settings)
        host, port = self.relay_address(settings)
        serve(
            lambda: relay_app(settings, name=self.service, database_url=url),
            service=self.service,
            host=host,
            port=port,
        )

    def _migrate(self, args: argparse.Namespace, settings: S) -> int:
        assert self.database is not None and self.migrations is not None
        from shared.migrations import upgrade, wait_until_migrated

        url = self.database(settings).get_secret_value()
        if args.command == "wait-migrated":
            return 0 if wait_until_migrated(self.migrations, url, timeout=args.timeout) else 1
        upgrade(self.migrations, url)
        return 0

    def _parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("serve", help=self.serve_help)
        if self.relay_address is not None:
            commands.add_parser(
                "relay",
                help="publish the event log to RabbitMQ; probes and /metrics on the relay's port",
            )
        if self.migrations is not None:
            commands.add_parser("migrate", help="create the database if needed; migrate it to head")
            waiting = commands.add_parser(
                "wait-migrated",
                help="migrate nothing: wait until the database is at this version's head (exit "
                "1 if not within --timeout); a Kubernetes init container, while the migration "
                "Job runs",
            )
            waiting.add_argument("--timeout", type=float, default=600.0, help="seconds")
        if self.dead_letter_queues:
            dead_letter_cli.add_parser(commands)
        if self.replay_queues:
            replay = commands.add_parser(
                "replay-dead-letters",
                help="move dead-lettered messages back to their queue, but those that cannot "
                "be read",
            )
            replay.add_argument(
                "--queue",
                choices=sorted(self.replay_queues),
                default=next(iter(self.replay_queues)),
            )
        for command in self.commands:
            command.arguments(commands.add_parser(command.name, help=command.help))
        return parser
