"""`make run`'s runner: it stops everything on Ctrl-C or SIGTERM (also when the signal comes
twice at once: `uv run` passes on the one a terminal or `kill` sends to it too); it starts a
process that dies again while the others, and the gateway, keep serving; and killed hard
itself, it leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy.stack.background import RunningStack, running_stack

from tests.e2e.stacks import free_port, port_in_use
from tests.support.waiting import wait_until

# A service that answers 200 to any GET (its /readyz too), on the port its setting names.
SERVICE = (
    "import http.server, os, sys\n"
    "class Ok(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = os.environ['PROCESS_NAME'].encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def log_message(self, *args): pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ[sys.argv[1]])), Ok)"
    ".serve_forever()\n"
)
NAMES = ("auth", "order_command", "order_query", "status_worker")  # the gateway routes to them


@dataclass(frozen=True)
class Stack:
    run: RunningStack
    ports: list[int]  # every port the stack listens on

    @property
    def runner(self) -> subprocess.Popen[bytes]:
        return self.run.runner.running


def _wait(condition: Any, what: str, stack: Stack, timeout: float = 60) -> None:
    wait_until(condition, timeout=timeout, interval=0.1, what=what, detail=stack.run.tail)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The runner over stand-in services, two processes each, up (nginx starts first, so the
    last service's readiness is the sign)."""
    (tmp_path / "service.py").write_text(SERVICE)
    gateway = free_port()
    settings = {f"{name.upper()}_PORT": str(free_port()) for name in NAMES}
    processes = tmp_path / "processes.toml"
    processes.write_text(
        "".join(
            f'[[services]]\nname = "{name}"\n'
            f'command = "{sys.executable} {tmp_path / "service.py"} {name.upper()}_PORT"\n'
            f'host = "127.0.0.1"\nport = "${{{name.upper()}_PORT}}"\nprocesses = "2"\n\n'
            for name in NAMES
        )
    )
    internal, metrics = free_port(), free_port()
    env = {
        **settings,
        "GATEWAY_METRICS_PORT": str(metrics),
        "STACK_RUN_DIR": str(tmp_path / "run"),
        "GATEWAY_PORT": str(gateway),
        "GATEWAY_INTERNAL_PORT": str(internal),
        "GATEWAY_RATE": "10000r/s",  # the tests ask as fast as they can
        "GATEWAY_BURST": "10000",
    }
    ports = [gateway, internal, metrics] + [
        int(p) + n * 100 for p in settings.values() for n in (0, 1)
    ]
    with running_stack(env, within=60, args=["--processes", str(processes)]) as run:
        yield Stack(run, ports)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_stack_stops_on_a_signal_that_comes_twice(stack: Stack, signum: int) -> None:
    stack.runner.send_signal(signum)
    stack.runner.send_signal(signum)
    assert stack.runner.wait(timeout=30) == 0, stack.run.tail()
    assert stack.run.events("stopping")[0]["asked_by"] == signal.Signals(signum).name
    assert not [port for port in stack.ports if port_in_use(port)]


def test_a_killed_process_is_started_again_while_the_gateway_serves_from_the_other(
    stack: Stack,
) -> None:
    [first] = [e for e in stack.run.events("started") if e["process"] == "order_query.1"]
    os.kill(first["pid"], signal.SIGKILL)
    answers = []
    with httpx.Client(base_url=stack.run.url, timeout=5) as client:
        deadline = time.monotonic() + 30
        while not [e for e in stack.run.events("started") if e.get("restarts")]:
            assert time.monotonic() < deadline, stack.run.tail()
            answers.append(client.get("/orders"))
    [exited] = stack.run.events("exited")
    assert (exited["process"], exited["exit_status"]) == ("order_query.1", -signal.SIGKILL)
    assert all(a.status_code == 200 for a in answers), [
        (a.status_code, a.text) for a in answers if a.status_code != 200
    ][:3]
    assert {a.text for a in answers} >= {"order_query.2"}
    # ... and the one started again serves too.
    _wait(
        lambda: "order_query.1" in {client_get(stack) for _ in range(10)},
        "the restarted process serving",
        stack,
    )
    assert stack.runner.poll() is None


def client_get(stack: Stack) -> str:
    return httpx.get(f"{stack.run.url}/orders", timeout=5).text


def test_the_runner_killed_hard_leaves_no_process_behind(stack: Stack) -> None:
    stack.runner.kill()  # SIGKILL: no chance to stop anything itself
    stack.runner.wait()
    _wait(
        lambda: not [port for port in stack.ports if port_in_use(port)],
        "every port of the stack free",
        stack,
        timeout=20,
    )
