"""Child processes in the foreground: their output prefixed with their name; one that dies is
started again (with a growing pause), and they all stop together only when asked.

The runner's own lines are JSON after its `stack |` prefix (an event name and its fields), so
a restart can be found and counted as any log line is.

A child can never outlive the runner: each one starts under `setpriv --pdeathsig TERM`
(util-linux), which has the kernel send it SIGTERM when the runner dies, however it dies
(kill -9, its terminal closed). Without that, a runner killed hard left its services
holding their ports, and the next `make run` could not start.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_print_lock = threading.Lock()

FIRST_PAUSE = 0.5  # seconds before a dead process is started again; doubled each time after
LONGEST_PAUSE = 10.0
STEADY_AFTER = 30.0  # seconds of life after which a process's pause starts over


def say(name: str, width: int, line: str) -> None:
    with _print_lock:
        sys.stdout.write(f"{name:<{width}} | {line}\n")
        sys.stdout.flush()


def tell(width: int, event: str, **fields: Any) -> None:
    """One of the runner's own lines: `stack | {"event": ..., ...}`."""
    say("stack", width, json.dumps({"event": event, **fields}))


def _orphan_proof(argv: Sequence[str]) -> list[str]:
    """`argv`, run so that the kernel stops it if the runner dies first (where setpriv is)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or sys.platform != "linux":
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    stop_signal: signal.Signals = signal.SIGTERM
    restart: bool = True  # a service is started again when it dies; a migration is not
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    started_at: float = 0.0
    pause: float = FIRST_PAUSE
    due_at: float | None = None  # when a dead one is to start again
    restarts: int = 0
    pid_history: list[int] = field(default_factory=list)


class Supervisor:
    """Starts children in sessions of their own, so a signal reaches each one's whole tree."""

    def __init__(self, env: Mapping[str, str], width: int, grace: float = 10.0) -> None:
        self.env = dict(env)
        self.width = width
        self.grace = grace
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        restart: bool = True,
    ) -> Child:
        child = Child(name, list(argv), {**self.env, **(env or {})}, stop_signal, restart)
        self.children.append(child)
        self._spawn(child)
        return child

    def _spawn(self, child: Child) -> None:
        # Spawned from the main thread only: the parent-death signal is tied to the thread
        # that forked, and the main thread lives as long as the runner.
        process = subprocess.Popen(
            _orphan_proof(child.argv),
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        pump = threading.Thread(target=self._pump, args=(child.name, process), daemon=True)
        pump.start()
        child.process, child.pump = process, pump
        child.started_at, child.due_at = time.monotonic(), None
        child.pid_history.append(process.pid)
        tell(
            self.width,
            "started",
            process=child.name,
            pid=process.pid,
            command=" ".join(child.argv),
            **({"restarts": child.restarts} if child.restarts else {}),
        )

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            say(name, self.width, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def run_to_end(self, name: str, argv: Sequence[str]) -> int:
        """Run a one-shot command (a migration); a stop request ends it too."""
        child = self.start(name, argv, restart=False)
        assert child.process is not None
        while child.process.poll() is None:
            if self.stopping.wait(0.1):
                self.stop_all()
        if child.pump is not None:
            child.pump.join(timeout=5)
        self.children.remove(child)
        return child.process.returncode

    def alive(self, name: str) -> bool:
        return any(
            c.name == name and c.process is not None and c.process.poll() is None
            for c in self.children
        )

    def wait_ready(self, name: str, address: str, deadline: float) -> bool:
        """Poll http://address/readyz until it answers 200; False on the deadline or a stop."""
        host, _, port = address.rpartition(":")
        tell(self.width, "waiting", process=name, url=f"http://{address}/readyz")
        while time.monotonic() < deadline and not self.stopping.is_set():
            self.heal()
            connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=1)
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    tell(self.width, "ready", process=name)
                    return True
            connection.close()
            self.stopping.wait(0.2)
        return False

    def heal(self) -> None:
        """Start again each child that died by itself, once its pause is over. A pause
        doubles with each quick death (up to LONGEST_PAUSE) and starts over after a process
        has lived STEADY_AFTER seconds."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if not child.restart or process is None or self.stopping.is_set():
                continue
            if child.due_at is None and process.poll() is not None:
                lived = now - child.started_at
                if lived >= STEADY_AFTER:
                    child.pause = FIRST_PAUSE
                child.due_at = now + child.pause
                tell(
                    self.width,
                    "exited",
                    process=child.name,
                    pid=process.pid,
                    exit_status=process.returncode,
                    lived_s=round(lived, 1),
                    restart_in_s=child.pause,
                )
                child.pause = min(child.pause * 2, LONGEST_PAUSE)
            elif child.due_at is not None and now >= child.due_at:
                child.restarts += 1
                self._spawn(child)

    def watch(self) -> None:
        """Keep every child running until a stop is asked for."""
        while not self.stopping.wait(0.2):
            self.heal()

    def stop_all(self) -> None:
        """Stop the newest first: the signal, a grace period, then SIGKILL. Each child's whole
        process group, even when the child itself has died (nginx workers outlive their master)."""
        self.stopping.set()
        running = [c for c in reversed(self.children) if c.process is not None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, child.stop_signal)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                tell(self.width, "killed", process=child.name, after_s=self.grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)  # whatever is left of its group
            child.process.wait()
            if child.pump is not None:
                child.pump.join(timeout=2)
