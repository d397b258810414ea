"""`<service> dead-letters [list | show ID... | discard ID...|--all | replay ID...|--all]`: the
operator's commands over a service's own dead-letter queues (shared.dead_letters, imported
when they run: the parser is built by every command of the service)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Sequence

Say = Callable[[str], None]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "dead-letters", help="list, show, discard or replay this service's dead letters"
    )
    actions = parser.add_subparsers(dest="action")
    actions.add_parser("list", help="each dead letter: id, type, order, attempts, error (default)")
    show = actions.add_parser("show", help="one dead letter's headers and body")
    show.add_argument("ids", nargs="+", metavar="ID")
    for name, what in (("discard", "drop"), ("replay", "put back into its queue")):
        action = actions.add_parser(name, help=f"{what} the dead letters named, or --all")
        action.add_argument("ids", nargs="*", metavar="ID")
        action.add_argument("--all", action="store_true", help="every dead letter")
        if name == "replay":
            action.add_argument(
                "--include-invalid",
                action="store_true",
                help="with --all, also those whose body cannot be read (they will fail again)",
            )


def run(args: argparse.Namespace, amqp_url: str, queues: Sequence[str], say: Say) -> int:
    action = args.action or "list"
    if action in {"discard", "replay"} and not args.all and not args.ids:
        say(f"dead-letters {action}: name the ids, or --all")
        return 2
    return asyncio.run(_run(action, args, amqp_url, queues, say))


async def _run(
    action: str, args: argparse.Namespace, amqp_url: str, queues: Sequence[str], say: Say
) -> int:
    from shared import dead_letters

    if action in {"list", "show"}:
        letters = await dead_letters.listed(amqp_url, queues)
        if action == "show":
            wanted = set(args.ids)
            for letter in letters:
                if letter.id in wanted:
                    say(letter.details())
            if not any(letter.id in wanted for letter in letters):
                say(f"no such dead letter in {', '.join(_names(queues))}")
            return 0
        for queue in queues:
            mine = [letter for letter in letters if letter.queue == queue]
            say(f"{_names([queue])[0]}: {len(mine) or 'no'} dead letter(s)")
            for letter in mine:
                say(f"  {letter.line()}")
        return 0
    ids = None if args.all else set(args.ids)
    outcome = await dead_letters.act(
        amqp_url,
        queues,
        action=action,
        ids=ids,
        report=say,
        include_invalid=getattr(args, "include_invalid", False),
    )
    done = outcome.replayed if action == "replay" else outcome.discarded
    summary = f"{action}ed {done} dead letter(s) of {', '.join(_names(queues))}"
    if outcome.left_invalid:
        summary += (
            f"; left {len(outcome.left_invalid)} invalid (a replay cannot help: `discard` "
            f"them, or `replay` them by id): {' '.join(outcome.left_invalid)}"
        )
    if ids is not None and outcome.matched < len(ids):
        summary += f"; {len(ids) - outcome.matched} id(s) not found here"
    say(summary)
    return 0


def _names(queues: Sequence[str]) -> list[str]:
    from shared.topology import dead_letter_queue

    return [dead_letter_queue(queue).name for queue in queues]
