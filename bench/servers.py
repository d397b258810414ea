"""The servers a benchmark runs beside its own process: each a child of a
deploy/stack/launcher.py `Launcher` with its output in a log file under .run/bench/ (RUN_DIR),
all stopped when the launcher's `with` block ends (by an error or Ctrl-C too); and what only
`logins` runs: the auth service alone, and the nginx gateway in front of it when it can be
built.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.stack import gateway
from deploy.stack.config import ROOT, load_env, load_processes
from deploy.stack.launcher import Child, Launcher, NotReady
from deploy.stack.servers import in_use, nginx_binary

RUN_DIR = ROOT / ".run" / "bench"
HOST = "127.0.0.1"
AUTH_PORT = 18101
GATEWAY_PORT = 18100
DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/auth_bench"
READY_WITHIN = 60.0  # seconds


def require_free(*ports: int) -> None:
    if busy := [port for port in ports if in_use(f"{HOST}:{port}")]:
        raise RuntimeError(f"ports {busy} are taken: is another benchmark running?")


def wait_ready(launcher: Launcher, child: Child, url: str) -> None:
    launcher.wait_ready(child, url, time.monotonic() + READY_WITHIN)


def require_alive(children: Iterable[Child]) -> None:
    """Raise, with the end of its log, for a child that ended during the benchmark."""
    for child in children:
        if child.ended():
            raise RuntimeError(
                f"{child.name} exited ({child.running.returncode}) during the benchmark; "
                f"the end of {child.log}:\n{child.tail()}"
            )


# --- the auth service -----------------------------------------------------------------------


def _venv_command(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def auth_env(argon2: Mapping[str, int], hash_threads: int) -> dict[str, str]:
    return {
        **os.environ,
        "AUTH_HOST": HOST,
        "AUTH_PORT": str(AUTH_PORT),
        "AUTH_DATABASE_URL": DATABASE_URL,
        "AUTH_JWT_KEY_FILE": ".run/bench/auth.pem",  # relative to ROOT, the cwd
        "AUTH_HASH_THREADS": str(hash_threads),
        "AUTH_ARGON2_MEMORY_KIB": str(argon2["memory_kib"]),
        "AUTH_ARGON2_TIME_COST": str(argon2["time_cost"]),
        "AUTH_ARGON2_PARALLELISM": str(argon2["parallelism"]),
        "OTEL_TRACES_EXPORTER": "none",  # nothing leaves 127.0.0.1
    }


def start_auth(launcher: Launcher, env: Mapping[str, str]) -> Child:
    """`auth-service migrate`, then `auth-service serve`, ready when /readyz answers 200."""
    require_free(AUTH_PORT)
    migrate = launcher.run_to_end(
        "auth-migrate", [_venv_command("auth-service"), "migrate"], env=env
    )
    if (code := migrate.running.returncode) != 0:
        raise NotReady(f"auth-service migrate failed ({code}):\n{migrate.tail()}")
    child = launcher.start("auth", [_venv_command("auth-service"), "serve"], env=env)
    wait_ready(launcher, child, f"http://{HOST}:{AUTH_PORT}/readyz")
    return child


# --- the gateway ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayPlan:
    """How to start nginx in front of the benchmark's auth service, or why it cannot be."""

    argv: list[str] | None
    reason: str


def plan_gateway() -> GatewayPlan:
    """nginx rendered by deploy/stack/gateway.py as `make run` renders it, with the login rate
    limit lifted; where it cannot be, the reason, and the service is measured directly."""
    if nginx_binary() is None:
        return GatewayPlan(None, "nginx is not installed")
    try:
        return GatewayPlan(_render_gateway(), "rendered by deploy/stack/gateway.py")
    except (OSError, ValueError) as exc:
        return GatewayPlan(None, f"deploy/stack/gateway.py could not render nginx: {exc!r}")


def _render_gateway() -> list[str]:
    env = {
        **load_env(),
        "AUTH_HOST": HOST,
        "AUTH_PORT": str(AUTH_PORT),
        "GATEWAY_HOST": HOST,
        "GATEWAY_PORT": str(GATEWAY_PORT),
        "GATEWAY_AUTH_RATE": "100000r/s",
        "GATEWAY_AUTH_BURST": "100000",
    }
    # Every service of deploy/processes.toml, since the config routes to each; only the auth
    # service is ours (the others get no traffic from this benchmark).
    services = [
        dataclasses.replace(s, host=HOST, port=AUTH_PORT) if s.name == "auth" else s
        for s in load_processes(env).services
    ]
    if not any(s.name == "auth" for s in services):
        raise ValueError("deploy/processes.toml has no service named auth")
    return gateway.nginx_argv(gateway.render(env, services, RUN_DIR))


def start_gateway(launcher: Launcher, argv: Sequence[str]) -> Child:
    """nginx in the foreground (stopped with SIGQUIT: finish what is in flight), ready when a
    request through it reaches the auth service."""
    require_free(GATEWAY_PORT)
    child = launcher.start("nginx", argv, stop_signal=signal.SIGQUIT)
    wait_ready(launcher, child, f"http://{HOST}:{GATEWAY_PORT}/auth/.well-known/jwks.json")
    return child
