"""The stacks the end-to-end tests drive, each `deploy/local_stack.py run` (tests/e2e/stacks.py)
on ports, databases and a run directory of its own, beside a developer's `make run`:

- `gateway_url`: the main stack, at .env's STATUS_ADVANCE_INTERVAL (a minute), so tests that
  change orders by hand are not raced by the status worker;
- `lifecycle_stack`: a second one whose worker moves orders every 2 s, with a RabbitMQ vhost
  and a Redis of its own, exporting its spans to a receiver the tests read;
- `dead_upstream_gateway`: the gateway alone, every upstream a closed port.

E2E_PORT_BASE moves them all, so two checkouts can run their e2e tests at once.

E2E_GATEWAY_URL, with E2E_STATUS_ADVANCE_INTERVAL, points the tests at a platform that runs
already (`make compose-check` sets them to its compose gateway): then `gateway_url` and
`lifecycle_stack` are that platform, and no stack is started for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from deploy.stack import gateway, servers
from deploy.stack.config import ROOT, load_env, load_processes
from deploy.stack.databases import drop_database
from deploy.stack.launcher import Launcher
from deploy.stack.redis_server import private_redis

from order_query.queues import ORDERS_QUEUE, USERS_QUEUE
from shared.topology import consumer_queue
from tests.e2e.accounts import Account, make_admin, sign_in, sign_up
from tests.e2e.stacks import LifecycleStack, free_port, running, stack_env
from tests.support.factories import user_body
from tests.support.otlp import span_receiver
from tests.support.rabbit import purge
from tests.support.servers import Servers
from tests.support.vhosts import own_vhost

_BASE = int(os.environ.get("E2E_PORT_BASE", "18000"))
LIFECYCLE_BASE = _BASE + 10
LIFECYCLE_REDIS_PORT = _BASE + 15
LIFECYCLE_INTERVAL = 1.0  # seconds between two steps of an order's lifecycle
RUNNING_GATEWAY = os.environ.get("E2E_GATEWAY_URL", "")  # a platform that runs already


@pytest.fixture(scope="session")
def main_stack_env(servers: Servers) -> dict[str, str]:
    return stack_env(servers, name="e2e", base=_BASE)


# Queues the main stack consumes that other tests fill without consuming them (the
# integration tests publish thousands of `user.registered` events to the same broker):
# emptied before it starts, so it does not spend its first minute on another test's backlog.
STALE_QUEUES = [consumer_queue(name, "").name for name in (ORDERS_QUEUE, USERS_QUEUE)]


@pytest.fixture(scope="session")
def gateway_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if RUNNING_GATEWAY:
        yield RUNNING_GATEWAY
        return
    main_stack_env: dict[str, str] = request.getfixturevalue("main_stack_env")
    asyncio.run(purge(main_stack_env["RABBITMQ_URL"], STALE_QUEUES))
    with running(main_stack_env) as url:
        yield url


@pytest.fixture(scope="session")
def lifecycle_stack(request: pytest.FixtureRequest) -> Iterator[LifecycleStack]:
    """Fresh every run: its databases are dropped first (the migrations make them again), and
    its vhost and Redis are new. Without redis-server installed, it shares the session's
    Redis with the main stack; their keys never meet (order and user ids are UUIDs), though
    an admin's list of every order would show both stacks' orders. With E2E_GATEWAY_URL,
    the platform that runs there, whose spans these tests cannot see."""
    if RUNNING_GATEWAY:
        interval = float(os.environ["E2E_STATUS_ADVANCE_INTERVAL"])
        yield LifecycleStack(url=RUNNING_GATEWAY, interval=interval, spans=None)
        return
    servers: Servers = request.getfixturevalue("servers")
    name = "e2e_lifecycle"
    with contextlib.ExitStack() as resources:
        receiver = resources.enter_context(span_receiver())
        redis_url = resources.enter_context(
            private_redis(LIFECYCLE_REDIS_PORT, ROOT / ".run" / name / "redis")
        )
        rabbitmq_url = resources.enter_context(own_vhost(servers.rabbitmq, "lifecycle"))
        env = stack_env(
            servers,
            name=name,
            base=LIFECYCLE_BASE,
            rabbitmq_url=rabbitmq_url,
            redis_url=redis_url,
        ) | {
            "STATUS_ADVANCE_INTERVAL": str(LIFECYCLE_INTERVAL),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # milliseconds between two exports
        }
        for database in ("AUTH_DATABASE_URL", "ORDERS_DATABASE_URL"):
            asyncio.run(drop_database(env[database]))
        url = resources.enter_context(running(env))
        yield LifecycleStack(url=url, interval=LIFECYCLE_INTERVAL, spans=receiver, env=env)


@pytest.fixture
async def lifecycle_user(lifecycle_stack: LifecycleStack) -> AsyncIterator[Account]:
    """A new user of the lifecycle stack, logged in through its gateway."""
    async with httpx.AsyncClient(base_url=lifecycle_stack.url, timeout=10) as http:
        yield await sign_up(http)


@pytest.fixture(scope="module")
def dead_upstream_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway from the same templates where every service's upstream is a closed port,
    and whose /metrics/<service> answers 127.0.0.1 only."""
    if servers.nginx_binary() is None:
        pytest.fail("nginx is not installed: run `python deploy/local_stack.py check`")
    port = free_port()
    env = load_env() | {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_METRICS_ALLOW": "127.0.0.1/32",
        "GATEWAY_METRICS_PORT": "",  # no metrics process: nothing to send to
    }
    # Ports nothing listens on (free a moment ago): connections are refused.
    services = [
        dataclasses.replace(service, host="127.0.0.1", port=free_port(), processes=1)
        for service in load_processes(env).services
    ]
    run_dir = tmp_path_factory.mktemp("dead-upstream")
    conf = gateway.render(env, services, run_dir)
    with Launcher(env, log_dir=run_dir) as launcher:
        nginx = launcher.start("nginx", gateway.nginx_argv(conf), stop_signal=signal.SIGQUIT)
        url = f"http://127.0.0.1:{port}"
        launcher.wait_ready(nginx, f"{url}/healthz", time.monotonic() + 10)
        yield url


@dataclass(frozen=True)
class AdminLogin:
    username: str
    password: str


@pytest.fixture(scope="session")
def main_admin(gateway_url: str, main_stack_env: dict[str, str]) -> AdminLogin:
    """An admin of the main stack, made as the README says (`make admin`), with a password
    a shell would trip on."""
    body = user_body(password=f'it\'s-a-pa$$ "{uuid.uuid4().hex[:6]}"')
    make_admin(main_stack_env, body["username"], body["email"], body["password"])
    return AdminLogin(body["username"], body["password"])


@pytest.fixture
async def admin(gateway_url: str, main_admin: AdminLogin) -> AsyncIterator[Account]:
    """The main stack's admin, logged in through its gateway."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        user_id = await sign_in(http, main_admin.username, main_admin.password)
        yield Account(id=user_id, refresh_token="", http=http)


@pytest.fixture
async def main_user(gateway_url: str) -> AsyncIterator[Account]:
    """A new user of the main stack, logged in through its gateway."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        yield await sign_up(http)
