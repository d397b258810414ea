"""The platform as `make run` starts it, in the background: `deploy/local_stack.py run` as a
child of ours, its output in `<STACK_RUN_DIR>/stack.log`, on ports of its own beside a
developer's `make run` (docs/local-stack.md). The end-to-end tests, the fault suite and the
`rebuild` benchmark start it so."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.stack.config import ROOT, run_dir
from deploy.stack.launcher import Child, Launcher, NotReady, answers

RUNNER = ROOT / "deploy" / "local_stack.py"
SERVICES = ("auth", "order_command", "order_query", "status_worker")  # deploy/processes.toml's
RELAYS = ("auth_relay", "order_command_relay")  # its relays, one process each
# Asked through the gateway once the runner says `up`: a gateway that answered while some
# processes were still starting has marked them down for a moment.
READY_PATH = "/auth/.well-known/jwks.json"


def stack_settings(base: int, run_dir: Path | str) -> dict[str, str]:
    """The settings that put a stack on ports of its own: the gateway at `base`, each service's
    first process on the next four (its next ones 100 above), the relays at `base + 6` and
    `base + 7` (`base + 5` is left to a Redis of the stack's own), the gateway's metrics
    process at `base + 8` and its internal side at `base + 9`; its run directory (the rendered
    gateway, the auth key) is `run_dir`. A new service adds its own port here."""
    internal = f"http://127.0.0.1:{base + 9}"
    return {
        "STACK_RUN_DIR": str(run_dir),
        **{f"{name.upper()}_HOST": "127.0.0.1" for name in SERVICES},
        **{f"{name.upper()}_PORT": str(base + n) for n, name in enumerate(SERVICES, 1)},
        **{f"{name.upper()}_HOST": "127.0.0.1" for name in RELAYS},
        **{f"{name.upper()}_PORT": str(base + n) for n, name in enumerate(RELAYS, 6)},
        "ORDER_COMMAND_URL": f"{internal}/order_command",
        "AUTH_URL": f"{internal}/auth",
        "AUTH_TOKEN_URL": f"{internal}/auth/internal/token",
        "JWKS_URL": f"{internal}/auth/auth/.well-known/jwks.json",
        "AUTH_JWT_KEY_FILE": str(Path(run_dir) / "keys" / "auth.pem"),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(base),
        "GATEWAY_INTERNAL_PORT": str(base + 9),
        "GATEWAY_METRICS_HOST": "127.0.0.1",
        "GATEWAY_METRICS_PORT": str(base + 8),
    }


@dataclass
class RunningStack:
    url: str  # its gateway
    launcher: Launcher
    runner: Child

    @property
    def log(self) -> Path:
        assert self.runner.log is not None
        return self.runner.log

    def events(self, event: str) -> list[dict[str, Any]]:
        """The runner's own JSON lines of this kind, so far."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            name, _, text = line.partition(" | ")
            if name.strip() == "stack" and text.startswith("{"):
                with contextlib.suppress(ValueError):
                    record = json.loads(text)
                    if record.get("event") == event:
                        found.append(record)
        return found

    def pids(self) -> dict[str, int]:
        """Each service process's current pid (its latest start)."""
        return {e["process"]: e["pid"] for e in self.events("started") if e["process"] != "nginx"}

    def tail(self, lines: int = 150) -> str:
        return self.runner.tail(lines)

    @property
    def exit_status(self) -> int | None:
        """The runner's, once it ended (-9: it had to be killed)."""
        return self.runner.running.poll()

    def stop(self) -> None:
        """Stop the runner (SIGTERM: it stops every child of its own first)."""
        self.launcher.stop_all()


@contextlib.contextmanager
def running_stack(
    env: Mapping[str, str],
    *,
    within: float,
    args: Sequence[str] = (),
    stop_within: float = 30.0,
) -> Iterator[RunningStack]:
    """Start the stack that `env` (over this environment) describes, with `args` for the
    runner; yield it once the runner says `up` and its gateway answers; stop it after."""
    settings = {**os.environ, **env}
    launcher = Launcher(settings, log_dir=run_dir(settings), grace=stop_within)
    runner = launcher.start("stack", [sys.executable, str(RUNNER), "run", *args])
    stack = RunningStack(f"http://127.0.0.1:{settings['GATEWAY_PORT']}", launcher, runner)
    try:
        deadline = time.monotonic() + within
        while not (stack.events("up") and answers(stack.url + READY_PATH)):
            if runner.ended():
                code = runner.running.returncode
                raise NotReady(f"the stack exited ({code}):\n{stack.tail()}")
            if time.monotonic() > deadline:
                raise NotReady(f"the stack was not up within {within:g} s:\n{stack.tail()}")
            time.sleep(0.2)
        yield stack
    finally:
        stack.stop()
