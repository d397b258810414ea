"""Children started one way, by `make run`'s runner, a benchmark or a test: each in a session of
its own (a signal reaches its whole tree), each stopped if whoever started it dies, its output
prefixed with its name on our standard output or kept in a log file of its own; waited for until
it answers; started again when it dies, where asked; all stopped together, newest first.

A child can never outlive its starter: it runs under `setpriv --pdeathsig TERM` (util-linux),
which has the kernel send it SIGTERM when the starter dies, however it dies (kill -9, its
terminal closed). Without that, a runner killed hard left its services holding their ports, and
the next `make run` could not start.

With output on standard output (`make run`), the launcher's own lines are JSON after its
`stack |` prefix (an event name and its fields), so a restart is found and counted as any log
line is.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from deploy.stack.config import ROOT
from deploy.stack.stopping import stop

FIRST_PAUSE = 0.5  # seconds before a dead process is started again; doubled each time after
LONGEST_PAUSE = 10.0
STEADY_AFTER = 30.0  # seconds of life after which a process's pause starts over
POLL_EVERY = 0.1  # seconds between two readiness probes

_print_lock = threading.Lock()


class NotReady(RuntimeError):
    """A child that ended or did not answer in time; `code` is what `make run` exits with."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def orphan_proof(argv: Sequence[str]) -> list[str]:
    """`argv`, run so that the kernel stops it if its starter dies first (where setpriv is)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or sys.platform != "linux":
        return list(argv)
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


def spawn(
    argv: Sequence[str], env: Mapping[str, str], output: int | IO[bytes], cwd: Path = ROOT
) -> subprocess.Popen[bytes]:
    """`argv` in a session of its own, orphan-proof, in `cwd`. Call it from the main thread:
    the parent-death signal is tied to the thread that forked, and a thread of a pool that
    ends would take the child with it."""
    return subprocess.Popen(
        orphan_proof(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def answers(url: str) -> bool:
    """`GET url` answers 200."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=1)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def tail(log: Path, lines: int = 30) -> str:
    """The last lines of a log file ("" when there is none)."""
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    return ""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    stop_signal: signal.Signals = signal.SIGTERM
    restart: bool = False  # started again when it dies (`make run`'s services)
    log: Path | None = None  # its output; None: our standard output, prefixed with its name
    process: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    started_at: float = 0.0
    pause: float = FIRST_PAUSE
    due_at: float | None = None  # when a dead one is to start again
    restarts: int = 0
    pid_history: list[int] = field(default_factory=list)

    @property
    def running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None, f"{self.name} was never started"
        return self.process

    @property
    def pgid(self) -> int:
        return self.running.pid  # a session of its own: the group's id is its pid

    def ended(self) -> bool:
        return self.running.poll() is not None

    def tail(self, lines: int = 30) -> str:
        return tail(self.log, lines) if self.log is not None else ""


class Launcher:
    """Starts, watches and stops a set of named children. With `log_dir`, each child's output
    goes to `<log_dir>/<name>.log` and the launcher says nothing; without, both go to our
    standard output (`make run`)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        log_dir: Path | None = None,
        width: int = 0,
        grace: float = 10.0,
    ) -> None:
        self.env = dict(env)
        self.log_dir = log_dir
        self.width = width  # of the name column on standard output
        self.grace = grace  # seconds each child has to stop before SIGKILL
        self.children: list[Child] = []
        self.stopping = threading.Event()

    def __enter__(self) -> Launcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def say(self, name: str, line: str) -> None:
        with _print_lock:
            sys.stdout.write(f"{name:<{self.width}} | {line}\n")
            sys.stdout.flush()

    def tell(self, event: str, **fields: Any) -> None:
        """One of the launcher's own lines, `stack | {"event": ..., ...}`, on standard output."""
        if self.log_dir is None:
            self.say("stack", json.dumps({"event": event, **fields}))

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        restart: bool = False,
    ) -> Child:
        """Start `argv` as `name`, with `env` over the launcher's environment."""
        log = None if self.log_dir is None else self.log_dir / f"{name}.log"
        child = Child(name, list(argv), {**self.env, **(env or {})}, stop_signal, restart, log)
        self.children.append(child)
        self._spawn(child)
        return child

    def named(self, name: str) -> Child:
        """The child started as `name` (the latest, if several)."""
        return next(c for c in reversed(self.children) if c.name == name)

    def _spawn(self, child: Child) -> None:
        if child.log is None:
            process = spawn(child.argv, child.env, subprocess.PIPE)
            child.pump = threading.Thread(
                target=self._pump, args=(child.name, process), daemon=True
            )
            child.pump.start()
        else:
            child.log.parent.mkdir(parents=True, exist_ok=True)
            with child.log.open("ab" if child.restarts else "wb") as output:
                process = spawn(child.argv, child.env, output)
        child.process = process
        child.started_at, child.due_at = time.monotonic(), None
        child.pid_history.append(process.pid)
        self.tell(
            "started",
            process=child.name,
            pid=process.pid,
            command=" ".join(child.argv),
            **({"restarts": child.restarts} if child.restarts else {}),
        )

    def _pump(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            self.say(name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    def run_to_end(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None
    ) -> Child:
        """Run a one-shot command (a migration) to its end; a stop request ends it too. One
        whose exit status is not 0 is told as `failed`."""
        child = self.start(name, argv, env=env)
        while not child.ended():
            if self.stopping.wait(POLL_EVERY):
                self.stop_all()
        if child.pump is not None:
            child.pump.join(timeout=5)
        self.children.remove(child)
        code = child.running.returncode
        if code != 0 and not self.stopping.is_set():
            self.tell("failed", process=name, exit_status=code)
        return child

    def wait_ready(self, child: Child, url: str, deadline: float) -> None:
        """Poll `url` until it answers 200, healing meanwhile. NotReady on the deadline, on a
        stop, or when the child ends and is not to be started again."""
        self.tell("waiting", process=child.name, url=url)
        while time.monotonic() < deadline and not self.stopping.is_set():
            self.heal()
            if not child.restart and child.ended():
                code = child.running.returncode
                raise NotReady(f"{child.name} exited ({code}) before it was ready\n{child.tail()}")
            if answers(url):
                self.tell("ready", process=child.name)
                return
            self.stopping.wait(POLL_EVERY)
        if self.stopping.is_set():
            raise NotReady(f"{child.name}: asked to stop before it was ready")
        self.tell("not_ready", process=child.name, url=url)
        raise NotReady(f"{child.name}: {url} did not answer 200 in time\n{child.tail()}")

    def heal(self) -> None:
        """Start again each child to be restarted that died by itself, once its pause is over.
        A pause doubles with each quick death (up to LONGEST_PAUSE) and starts over after a
        process has lived STEADY_AFTER seconds."""
        now = time.monotonic()
        for child in self.children:
            if not child.restart or child.process is None or self.stopping.is_set():
                continue
            if child.due_at is None and child.ended():
                lived = now - child.started_at
                if lived >= STEADY_AFTER:
                    child.pause = FIRST_PAUSE
                child.due_at = now + child.pause
                self.tell(
                    "exited",
                    process=child.name,
                    pid=child.process.pid,
                    exit_status=child.process.returncode,
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

    def stop_all(self) -> list[Child]:
        """Stop the newest first (deploy/stack/stopping.py); the children that had to be
        killed. Each child's whole process group, even when the child itself has died."""
        self.stopping.set()
        started = [c for c in reversed(self.children) if c.process is not None]
        late = stop([(c.running, c.stop_signal) for c in started], self.grace)
        killed = [c for c in started if c.process in late]
        for child in killed:
            self.tell("killed", process=child.name, after_s=self.grace)
        for child in started:
            if child.pump is not None:
                child.pump.join(timeout=2)
        return killed
