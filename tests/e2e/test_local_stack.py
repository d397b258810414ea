"""`make run`'s runner: it stops everything on Ctrl-C or SIGTERM (also when the signal comes
twice at once: `uv run` passes on the one a terminal or `kill` sends to it too); it starts a
process that dies again while the others, and the gateway, keep serving; and killed hard
itself, it leaves no process behind."""

from __future__ import annotations

import json
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

from tests.e2e.stacks import ROOT, free_port, port_in_use, tail
from tests.support.waiting import wait_until

STACK = ROOT / "deploy" / "local_stack.py"
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


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    log: Path
    gateway: int
    ports: list[int]  # every port the stack listens on

    def events(self, event: str) -> list[dict[str, Any]]:
        """The runner's own JSON lines of this kind, so far."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            name, _, text = line.partition(" | ")
            if name.strip() == "stack" and text.startswith("{"):
                record = json.loads(text)
                if record.get("event") == event:
                    found.append(record)
        return found


def _wait(condition: Any, what: str, log: Path, timeout: float = 60) -> None:
    wait_until(condition, timeout=timeout, interval=0.1, what=what, detail=lambda: tail(log))


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
    log = tmp_path / "stack.log"
    internal, metrics = free_port(), free_port()
    env = {
        **os.environ,
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
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(STACK), "run", "--processes", str(processes)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    made = Stack(process, log, gateway, ports)
    try:
        _wait(lambda: made.events("up") or process.poll() is not None, "the stack up", log)
        assert process.poll() is None, tail(log)
        yield made
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_stack_stops_on_a_signal_that_comes_twice(stack: Stack, signum: int) -> None:
    stack.process.send_signal(signum)
    stack.process.send_signal(signum)
    assert stack.process.wait(timeout=30) == 0, tail(stack.log)
    assert stack.events("stopping")[0]["asked_by"] == signal.Signals(signum).name
    assert not [port for port in stack.ports if port_in_use(port)]


def test_a_killed_process_is_started_again_while_the_gateway_serves_from_the_other(
    stack: Stack,
) -> None:
    [first] = [e for e in stack.events("started") if e["process"] == "order_query.1"]
    os.kill(first["pid"], signal.SIGKILL)
    answers = []
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.gateway}", timeout=5) as client:
        deadline = time.monotonic() + 30
        while not [e for e in stack.events("started") if e.get("restarts")]:
            assert time.monotonic() < deadline, tail(stack.log)
            answers.append(client.get("/orders"))
    [exited] = stack.events("exited")
    assert (exited["process"], exited["exit_status"]) == ("order_query.1", -signal.SIGKILL)
    assert all(a.status_code == 200 for a in answers), [
        (a.status_code, a.text) for a in answers if a.status_code != 200
    ][:3]
    assert {a.text for a in answers} >= {"order_query.2"}
    # ... and the one started again serves too.
    _wait(
        lambda: "order_query.1" in {client_get(stack) for _ in range(10)},
        "the restarted process serving",
        stack.log,
    )
    assert stack.process.poll() is None


def client_get(stack: Stack) -> str:
    return httpx.get(f"http://127.0.0.1:{stack.gateway}/orders", timeout=5).text


def test_the_runner_killed_hard_leaves_no_process_behind(stack: Stack) -> None:
    stack.process.kill()  # SIGKILL: no chance to stop anything itself
    stack.process.wait()
    _wait(
        lambda: not [port for port in stack.ports if port_in_use(port)],
        "every port of the stack free",
        stack.log,
        timeout=20,
    )
