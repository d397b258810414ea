"""Child processes in the foreground: their output prefixed with their name, stopped together."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_print_lock = threading.Lock()


def say(name: str, width: int, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{name:<{width}} | {line}\n")
        sys.stdout.flush()


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    pump: threading.Thread
    stop_signal: signal.Signals = signal.SIGTERM


class Supervisor:
    """Starts children in sessions of their own, so a signal reaches each one's whole tree."""

    def __init__(self, env: Mapping[str, str], width: int, grace: float = 10.0) -> None:
        self.env = dict(env)
        self.width = width
        self.grace = grace
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def start(
        self, name: str, argv: Sequence[str], stop_signal: signal.Signals = signal.SIGTERM
    ) -> Child:
        say("stack", self.width, f"starting {name}: {' '.join(argv)}")
        process = subprocess.Popen(
            list(argv),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pump = threading.Thread(target=self._pump, args=(name, process), daemon=True)
        pump.start()
        child = Child(name, process, pump, stop_signal)
        self.children.append(child)
        return child

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            say(name, self.width, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def run_to_end(self, name: str, argv: Sequence[str]) -> int:
        """Run a one-shot command (a migration); a stop request ends it too."""
        child = self.start(name, argv)
        while child.process.poll() is None:
            if self.stopping.wait(0.1):
                self.stop_all()
        child.pump.join(timeout=5)
        self.children.remove(child)
        return child.process.returncode

    def dead(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait_ready(self, name: str, address: str, deadline: float) -> bool:
        """Poll http://address/readyz until it answers 200; False on a death or the deadline."""
        host, _, port = address.rpartition(":")
        say("stack", self.width, f"waiting for {name} at http://{address}/readyz")
        while time.monotonic() < deadline and not self.stopping.is_set() and not self.dead():
            connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=1)
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    say("stack", self.width, f"{name} is ready")
                    return True
            connection.close()
            self.stopping.wait(0.2)
        return False

    def watch(self) -> Child | None:
        """Block until a stop is asked for (None) or a child ends by itself (that child)."""
        while not self.stopping.wait(0.2):
            if child := self.dead():
                return child
        return None

    def stop_all(self) -> None:
        """Stop the newest first: the signal, a grace period, then SIGKILL. Each child's whole
        process group, even when the child itself has died (nginx workers outlive their master)."""
        self.stopping.set()
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, child.stop_signal)
        deadline = time.monotonic() + self.grace
        for child in reversed(self.children):
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say("stack", self.width, f"{child.name} did not stop in time: SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)  # whatever is left of its group
            child.process.wait()
            child.pump.join(timeout=2)
