"""The servers a benchmark drives: the auth service and (when it can be built) the nginx gateway.

Each child runs in a session of its own with its output in a log file under .run/bench/, and
`Children` stops them all (newest first) when its `with` block ends, by an error or Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".run" / "bench"
HOST = "127.0.0.1"
AUTH_PORT = 18101
GATEWAY_PORT = 18100
DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/auth_bench"
READY_WITHIN = 60.0  # seconds
POLL_EVERY = 0.1  # seconds between readiness polls


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: signal.Signals

    @property
    def pgid(self) -> int:
        return self.process.pid  # its own session: the group id is its pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Children:
    def __init__(self, grace: float = 10.0) -> None:
        self.grace = grace
        self.children: list[Child] = []

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> Child:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        log = RUN_DIR / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log, stop_signal)
        self.children.append(child)
        return child

    def stop_all(self) -> None:
        """The stop signal to each group, a grace period, then SIGKILL; a second Ctrl-C is
        ignored meanwhile so that nothing is left running."""
        with _ignoring_sigint():
            for child in reversed(self.children):
                _signal_group(child, child.stop_signal)
            deadline = time.monotonic() + self.grace
            for child in reversed(self.children):
                try:
                    child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(child, signal.SIGKILL)
                    child.process.wait()
            self.children.clear()


def _signal_group(child: Child, signum: signal.Signals) -> None:
    if child.process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pgid, signum)


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def port_free(port: int) -> bool:
    """Nothing listens on the port (connections of an earlier run in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_until_ok(url: str, child: Child, *, within: float = READY_WITHIN) -> None:
    """Poll `url` until it answers 200; raise if the child dies or the deadline passes."""
    deadline = time.monotonic() + within
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited ({child.process.returncode}) before it was ready:\n"
                    + child.log_tail()
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return
            time.sleep(POLL_EVERY)
    raise RuntimeError(f"{child.name}: {url} did not answer 200 within {within:g} s")


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


def start_auth(children: Children, env: Mapping[str, str]) -> Child:
    """`auth-service migrate`, then `auth-service serve`, ready when /readyz answers 200."""
    if not port_free(AUTH_PORT):
        raise RuntimeError(f"port {AUTH_PORT} is taken: is another benchmark running?")
    migrate = subprocess.run(
        [_venv_command("auth-service"), "migrate"],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        timeout=180,
        check=False,
    )
    if migrate.returncode != 0:
        output = (migrate.stdout + migrate.stderr).decode(errors="replace")[-3000:]
        raise RuntimeError(f"auth-service migrate failed ({migrate.returncode}):\n{output}")
    child = children.start("auth", [_venv_command("auth-service"), "serve"], env)
    wait_until_ok(f"http://{HOST}:{AUTH_PORT}/readyz", child)
    return child


# --- the gateway ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayPlan:
    """How to start nginx in front of the benchmark's auth service, or why it cannot be."""

    argv: list[str] | None
    reason: str


def plan_gateway() -> GatewayPlan:
    """Use deploy/stack/gateway.py's own renderer (another engineer's, still changing): any
    failure to import or render it means "measure the service directly", with the reason."""
    nginx = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if nginx is None:
        return GatewayPlan(None, "nginx is not installed")
    try:
        check = subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "local_stack.py"), "--help"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GatewayPlan(None, f"`deploy/local_stack.py --help` did not run: {exc}")
    if check.returncode != 0:
        return GatewayPlan(None, "`deploy/local_stack.py --help` fails")
    try:
        return GatewayPlan(_render_gateway(), "rendered by deploy/stack/gateway.py")
    except Exception as exc:  # the module is work in progress: any failure means "not yet"
        return GatewayPlan(None, f"deploy/stack/gateway.py could not render nginx: {exc!r}")


def _render_gateway() -> list[str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    gateway: Any = importlib.import_module("deploy.stack.gateway")
    config: Any = importlib.import_module("deploy.stack.config")
    env = {
        **config.load_env(),
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
        for s in config.load_processes(env).services
    ]
    if not any(s.name == "auth" for s in services):
        raise ValueError("deploy/processes.toml has no service named auth")
    conf = gateway.render(env, services, RUN_DIR)
    argv: list[str] = [str(word) for word in gateway.nginx_argv(conf)]
    return argv


def start_gateway(children: Children, argv: Sequence[str]) -> Child:
    """nginx in the foreground (stopped with SIGQUIT: finish what is in flight), ready when a
    request through it reaches the auth service."""
    if not port_free(GATEWAY_PORT):
        raise RuntimeError(f"port {GATEWAY_PORT} is taken: is another benchmark running?")
    child = children.start("nginx", argv, os.environ, stop_signal=signal.SIGQUIT)
    wait_until_ok(f"http://{HOST}:{GATEWAY_PORT}/auth/.well-known/jwks.json", child)
    return child
