"""`make run`'s supervisor stops everything on Ctrl-C or SIGTERM, also when the signal comes
twice at once: `uv run` passes on the one a terminal or `kill` sends to it too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.stacks import ROOT, free_port, port_in_use, tail

STACK = ROOT / "deploy" / "local_stack.py"
# A service that answers 200 to any GET (its /readyz too), as fast as a test needs.
SERVICE = (
    "import http.server, sys\n"
    "class Ok(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), Ok).serve_forever()\n"
)


def _start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, int]:
    (tmp_path / "service.py").write_text(SERVICE)
    gateway = free_port()
    names = ("auth", "order_command", "order_query", "status_worker")  # the gateway routes to them
    ports = {name: free_port() for name in names}
    processes = tmp_path / "processes.toml"
    processes.write_text(
        "".join(
            f'[[services]]\nname = "{name}"\n'
            f'command = "{sys.executable} {tmp_path / "service.py"} {port}"\n'
            f'host = "127.0.0.1"\nport = "{port}"\n\n'
            for name, port in ports.items()
        )
    )
    log = tmp_path / "stack.log"
    env = {**os.environ, "STACK_RUN_DIR": str(tmp_path / "run"), "GATEWAY_PORT": str(gateway)}
    with log.open("wb") as output:
        stack = subprocess.Popen(
            [sys.executable, str(STACK), "run", "--processes", str(processes)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return stack, log, gateway


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_stack_stops_on_a_signal_that_comes_twice(tmp_path: Path, signum: int) -> None:
    stack, log, gateway = _start(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not port_in_use(gateway):  # nginx starts last: everything is up
            assert stack.poll() is None, tail(log)
            assert time.monotonic() < deadline, f"the stack did not come up:\n{tail(log)}"
            time.sleep(0.1)
        stack.send_signal(signum)
        stack.send_signal(signum)
        assert stack.wait(timeout=30) == 0, tail(log)
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
    assert f"{signal.Signals(signum).name}: stopping" in log.read_text()
