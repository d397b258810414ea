"""A whole stack of its own (deploy/local_stack.py run) beside a developer's `make run`."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deploy.stack import gateway, servers
from deploy.stack.config import load_env, load_processes

from order_query.consumers import ORDERS_QUEUE, USERS_QUEUE
from shared.topology import consumer_queue
from tests.support.rabbit import purge
from tests.support.servers import Servers

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".run" / "e2e"
# E2E_PORT_BASE moves the whole stack, so two checkouts can run their e2e tests at once.
_BASE = int(os.environ.get("E2E_PORT_BASE", "18000"))
GATEWAY_PORT, AUTH_PORT, ORDER_COMMAND_PORT, ORDER_QUERY_PORT, STATUS_WORKER_PORT = range(
    _BASE, _BASE + 5
)
START_WITHIN = 90.0  # seconds: migrations, every service ready, then nginx
STOP_WITHIN = 30.0


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _tail(log: Path, lines: int = 150) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def stack_env(servers: Servers) -> dict[str, str]:
    """What the e2e stack sets over the environment and .env: its own ports, databases and
    run directory, so it runs beside a developer's `make run`. A new service adds its own
    *_PORT (and database) here."""
    return {
        "STACK_RUN_DIR": str(RUN_DIR.relative_to(ROOT)),
        "RABBITMQ_URL": servers.rabbitmq,
        "REDIS_URL": servers.redis,
        "AUTH_DATABASE_URL": servers.database("auth_e2e"),
        "AUTH_HOST": "127.0.0.1",
        "AUTH_PORT": str(AUTH_PORT),
        "ORDERS_DATABASE_URL": servers.database("orders_e2e"),
        "ORDER_COMMAND_HOST": "127.0.0.1",
        "ORDER_COMMAND_PORT": str(ORDER_COMMAND_PORT),
        "ORDER_COMMAND_URL": f"http://127.0.0.1:{ORDER_COMMAND_PORT}",
        "ORDER_QUERY_HOST": "127.0.0.1",
        "ORDER_QUERY_PORT": str(ORDER_QUERY_PORT),
        "STATUS_WORKER_HOST": "127.0.0.1",
        "STATUS_WORKER_PORT": str(STATUS_WORKER_PORT),
        "AUTH_TOKEN_URL": f"http://127.0.0.1:{AUTH_PORT}/auth/token",
        "AUTH_JWT_KEY_FILE": str((RUN_DIR / "keys" / "auth.pem").relative_to(ROOT)),
        "JWKS_URL": f"http://127.0.0.1:{AUTH_PORT}/auth/.well-known/jwks.json",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(GATEWAY_PORT),
        "GATEWAY_AUTH_RATE": "50r/s",
        "GATEWAY_AUTH_BURST": "100",
        "GATEWAY_RATE": "1000r/s",
        "GATEWAY_BURST": "2000",
    }


# Queues the stack consumes that other tests fill without consuming them (the integration
# tests publish thousands of `user.registered` events to the same broker): emptied before the
# stack starts, so it does not spend its first minute on another test's backlog.
STALE_QUEUES = [consumer_queue(name, "").name for name in (ORDERS_QUEUE, USERS_QUEUE)]


@pytest.fixture(scope="session")
def gateway_url(stack_env: dict[str, str]) -> Iterator[str]:
    ports = (GATEWAY_PORT, AUTH_PORT, ORDER_COMMAND_PORT, ORDER_QUERY_PORT, STATUS_WORKER_PORT)
    busy = [port for port in ports if _port_in_use(port)]
    if busy:
        pytest.fail(f"ports {busy} are taken: is another e2e stack still running?")
    asyncio.run(purge(stack_env["RABBITMQ_URL"], STALE_QUEUES))
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    log = RUN_DIR / "stack.log"
    url = f"http://127.0.0.1:{GATEWAY_PORT}"
    with log.open("wb") as output:
        stack = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "local_stack.py"), "run"],
            cwd=ROOT,
            env={**os.environ, **stack_env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_WITHIN
        while True:
            if stack.poll() is not None:
                pytest.fail(f"the stack exited ({stack.returncode}):\n{_tail(log)}")
            try:
                if httpx.get(f"{url}/auth/.well-known/jwks.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the stack was not up within {START_WITHIN} s:\n{_tail(log)}")
            time.sleep(0.2)
        yield url
    finally:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()
            pytest.fail(f"the stack did not stop within {STOP_WITHIN} s:\n{_tail(log)}")
    assert stack.returncode == 0, f"the stack stopped with {stack.returncode}:\n{_tail(log)}"


@pytest.fixture(scope="module")
def dead_upstream_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway from the same templates where every service's upstream is a closed port,
    and whose /metrics/<service> answers 127.0.0.1 only."""
    if servers.nginx_binary() is None:
        pytest.fail("nginx is not installed: run `python deploy/local_stack.py check`")
    port = _free_port()
    env = load_env() | {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_METRICS_ALLOW": "127.0.0.1/32",
    }
    # Ports nothing listens on (free a moment ago): connections are refused.
    services = [
        dataclasses.replace(service, host="127.0.0.1", port=_free_port())
        for service in load_processes(env).services
    ]
    run_dir = tmp_path_factory.mktemp("dead-upstream")
    conf = gateway.render(env, services, run_dir)
    log = run_dir / "nginx.log"
    with log.open("wb") as output:
        nginx = subprocess.Popen(gateway.nginx_argv(conf), stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while not _port_in_use(port):
            if nginx.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the gateway did not start:\n{_tail(log)}")
            time.sleep(0.05)
        yield url
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(timeout=10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait()
