"""Whole stacks of the platform for the end-to-end tests: `deploy/local_stack.py run` with ports,
databases and a run directory of each stack's own, so several run beside a developer's
`make run` and beside each other (tests/e2e/conftest.py says which stacks there are)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from deploy.stack.config import PORT_STRIDE

from tests.support.otlp import SpanReceiver
from tests.support.servers import Servers

ROOT = Path(__file__).resolve().parents[2]
START_WITHIN = 90.0  # seconds: migrations, every service ready, then nginx
PROCESSES = 2  # of each service, in every stack the tests start (as `make run` by default)
STOP_WITHIN = 30.0


@dataclass(frozen=True)
class Ports:
    """A stack's ports: the gateway at `base`, the services' first processes on the next four
    (their second processes 100 above, deploy/stack/config.py), the gateway's internal side
    at `base + 9`."""

    gateway: int
    auth: int
    order_command: int
    order_query: int
    status_worker: int
    internal: int
    gateway_metrics: int  # UDP and HTTP

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(
            base,
            base + 1,
            base + 2,
            base + 3,
            base + 4,
            internal=base + 9,
            gateway_metrics=base + 8,
        )

    def all(self, processes: int = 2) -> tuple[int, ...]:
        services = (self.auth, self.order_command, self.order_query, self.status_worker)
        each = tuple(port + n * PORT_STRIDE for port in services for n in range(processes))
        return (self.gateway, self.internal, self.gateway_metrics, *each)


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


def tail(log: Path, lines: int = 150) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stack_env(
    servers: Servers,
    *,
    name: str,
    ports: Ports,
    rabbitmq_url: str | None = None,
    redis_url: str | None = None,
) -> dict[str, str]:
    """What a stack sets over the environment and .env: its ports, its databases
    (`auth_<name>`, `orders_<name>`, plus TEST_DATABASE_SUFFIX) and its run directory
    (`.run/<name>`); the session's broker and Redis unless given others. A new service adds
    its own *_PORT (and database) here."""
    run_dir = Path(".run") / name
    internal = f"http://127.0.0.1:{ports.internal}"
    return {
        "STACK_RUN_DIR": str(run_dir),
        "RABBITMQ_URL": rabbitmq_url or servers.rabbitmq,
        "REDIS_URL": redis_url or servers.redis,
        "AUTH_DATABASE_URL": servers.database(f"auth_{name}"),
        "AUTH_HOST": "127.0.0.1",
        "AUTH_PORT": str(ports.auth),
        "ORDERS_DATABASE_URL": servers.database(f"orders_{name}"),
        "ORDER_COMMAND_HOST": "127.0.0.1",
        "ORDER_COMMAND_PORT": str(ports.order_command),
        "ORDER_COMMAND_URL": f"{internal}/order_command",
        "AUTH_URL": f"{internal}/auth",
        "ORDER_QUERY_HOST": "127.0.0.1",
        "ORDER_QUERY_PORT": str(ports.order_query),
        "STATUS_WORKER_HOST": "127.0.0.1",
        "STATUS_WORKER_PORT": str(ports.status_worker),
        "AUTH_TOKEN_URL": f"{internal}/auth/internal/token",
        "AUTH_JWT_KEY_FILE": str(run_dir / "keys" / "auth.pem"),
        "JWKS_URL": f"{internal}/auth/auth/.well-known/jwks.json",
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(ports.gateway),
        "GATEWAY_INTERNAL_PORT": str(ports.internal),
        "STACK_PROCESSES": str(PROCESSES),
        # The broker's management plugin is the developer's to turn on, not the tests'.
        "RABBITMQ_MANAGEMENT_PORT": "",
        "GATEWAY_METRICS_HOST": "127.0.0.1",
        "GATEWAY_METRICS_PORT": str(ports.gateway_metrics),
        "GATEWAY_AUTH_RATE": "50r/s",
        "GATEWAY_AUTH_BURST": "100",
        "GATEWAY_RATE": "1000r/s",
        "GATEWAY_BURST": "2000",
    }


@contextlib.contextmanager
def running(env: Mapping[str, str], ports: Ports) -> Iterator[str]:
    """Start the stack `env` describes, wait until its gateway answers, yield the gateway's
    URL; stop the stack after, and fail unless it stopped cleanly. Its output is in
    <STACK_RUN_DIR>/stack.log."""
    busy = [port for port in ports.all(PROCESSES) if port_in_use(port)]
    if busy:
        pytest.fail(f"ports {busy} are taken: is another e2e stack still running?")
    run_dir = ROOT / env["STACK_RUN_DIR"]
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "stack.log"
    url = f"http://127.0.0.1:{ports.gateway}"
    with log.open("wb") as output:
        stack = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy" / "local_stack.py"), "run"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_WITHIN
        while True:
            if stack.poll() is not None:
                pytest.fail(f"the stack exited ({stack.returncode}):\n{tail(log)}")
            try:
                # Up once the runner says so (every process ready: a gateway that answers
                # while some are still starting has marked them down for a moment), and the
                # gateway answers.
                up = b'"event": "up"' in log.read_bytes()
                if up and httpx.get(f"{url}/auth/.well-known/jwks.json", timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the stack was not up within {START_WITHIN} s:\n{tail(log)}")
            time.sleep(0.2)
        yield url
    finally:
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            stack.kill()
            stack.wait()
            pytest.fail(f"the stack did not stop within {STOP_WITHIN} s:\n{tail(log)}")
    assert stack.returncode == 0, f"the stack stopped with {stack.returncode}:\n{tail(log)}"
