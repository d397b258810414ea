"""Whole stacks of the platform for the end-to-end tests: `deploy/local_stack.py run` in the
background (deploy/stack/background.py) with ports, databases and a run directory of each
stack's own, so several run beside a developer's `make run` and beside each other
(tests/e2e/conftest.py says which stacks there are)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.background import running_stack, stack_settings

from tests.support.otlp import SpanReceiver
from tests.support.servers import Servers

START_WITHIN = 90.0  # seconds: migrations, every service ready, then nginx
PROCESSES = 2  # of each service, in every stack the tests start (as `make run` by default)


@dataclass(frozen=True)
class LifecycleStack:
    """The second stack: its status worker moves orders every `interval` seconds."""

    url: str  # its gateway
    interval: float  # its STATUS_ADVANCE_INTERVAL
    spans: SpanReceiver | None  # what its services exported (None: a stack not ours)
    env: Mapping[str, str] | None = None  # what it runs with (None: a stack not ours)


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stack_env(
    servers: Servers,
    *,
    name: str,
    base: int,
    rabbitmq_url: str | None = None,
    redis_url: str | None = None,
) -> dict[str, str]:
    """What a stack sets over the environment and .env: its ports from `base`
    (deploy/stack/background.py), its databases (`auth_<name>`, `orders_<name>`, plus
    TEST_DATABASE_SUFFIX) and its run directory (`.run/<name>`); the session's broker and
    Redis unless given others. A new service adds its database here."""
    return stack_settings(base, Path(".run") / name) | {
        "RABBITMQ_URL": rabbitmq_url or servers.rabbitmq,
        "REDIS_URL": redis_url or servers.redis,
        "AUTH_DATABASE_URL": servers.database(f"auth_{name}"),
        "ORDERS_DATABASE_URL": servers.database(f"orders_{name}"),
        "STACK_PROCESSES": str(PROCESSES),
        # The broker's management plugin is the developer's to turn on, not the tests'.
        "RABBITMQ_MANAGEMENT_PORT": "",
        "GATEWAY_AUTH_RATE": "50r/s",
        "GATEWAY_AUTH_BURST": "100",
        "GATEWAY_RATE": "1000r/s",
        "GATEWAY_BURST": "2000",
    }


@contextlib.contextmanager
def running(env: Mapping[str, str]) -> Iterator[str]:
    """Start the stack `env` describes, wait until its gateway answers, yield the gateway's
    URL; stop the stack after, and fail unless it stopped cleanly. Its output is in
    <STACK_RUN_DIR>/stack.log."""
    with running_stack(env, within=START_WITHIN) as stack:
        yield stack.url
    assert stack.exit_status == 0, f"the stack stopped with {stack.exit_status}:\n{stack.tail()}"
