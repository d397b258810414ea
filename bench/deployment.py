"""The whole platform for a benchmark, and the bare app beside it behind the same nginx.

Every process of deploy/processes.toml, started as `make run` starts them
(deploy/stack/startup.py), runs on ports, databases, a RabbitMQ vhost and a Redis database of
the benchmarks' own, so a developer's `make run` or a test run on the same servers is not
touched. nginx is rendered from deploy/nginx/ by deploy/stack/gateway.py, as `make run` renders
it, with the rate limits lifted and the access log off.

The ceiling gateway is the same nginx config with order_command's and order_query's upstream
pointed at `bench/bare_app.py`: the same edge, the same paths, none of our code behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import redis
from bench import servers
from deploy.stack import gateway
from deploy.stack.config import ROOT, Service, load_env, load_processes
from deploy.stack.databases import drop_database
from deploy.stack.launcher import Child, Launcher
from deploy.stack.startup import start_platform

HOST = "127.0.0.1"
GATEWAY_PORT, AUTH_PORT, ORDER_COMMAND_PORT, ORDER_QUERY_PORT, STATUS_WORKER_PORT = range(
    18300, 18305
)
BARE_PORT, CEILING_GATEWAY_PORT = 18305, 18306
AUTH_RELAY_PORT, ORDER_COMMAND_RELAY_PORT = 18310, 18311
# Each gateway's internal side (service to service): the two must not share a port.
INTERNAL_PORTS = {GATEWAY_PORT: 18307, CEILING_GATEWAY_PORT: 18308}
VHOST = "orders-bench"
REDIS_DB = 14  # the tests use 15
RUN_DIR = servers.RUN_DIR / "platform"
PASSWORD = "bench-platform-password-1"  # noqa: S105 (the benchmark's own user)


@dataclass
class Platform:
    env: dict[str, str]
    services: dict[str, Child]
    gateway: Child
    ceiling_gateway: Child
    bare: Child

    @property
    def url(self) -> str:
        return f"http://{HOST}:{GATEWAY_PORT}"

    @property
    def ceiling_url(self) -> str:
        return f"http://{HOST}:{CEILING_GATEWAY_PORT}"

    @property
    def rabbitmq_url(self) -> str:
        return self.env["RABBITMQ_URL"]

    def require_alive(self) -> None:
        servers.require_alive(
            [*self.services.values(), self.gateway, self.ceiling_gateway, self.bare]
        )

    def log_in(self, username: str = "bench_platform") -> str:
        """An access token for the benchmark's user (made on first use), through the gateway."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
            made = client.post("/auth/create_user", json=body)
            if made.status_code not in (201, 409):
                raise RuntimeError(f"create_user: {made.status_code} {made.text}")
            tokens = client.post("/auth/token", data={"username": username, "password": PASSWORD})
            if tokens.status_code != 200:
                raise RuntimeError(f"log in: {tokens.status_code} {tokens.text}")
            token: str = tokens.json()["access_token"]
            return token


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=path))


def platform_env(base: Mapping[str, str]) -> dict[str, str]:
    """`.env` and the environment, with the benchmark's own ports, stores and quiet logs."""
    databases = {
        name: _with_path(base[name], f"/{database}")
        for name, database in (
            ("AUTH_DATABASE_URL", "auth_bench"),
            ("ORDERS_DATABASE_URL", "orders_bench"),
        )
    }
    return {
        **base,
        **databases,
        "RABBITMQ_URL": _with_path(base["RABBITMQ_URL"], "/" + quote(VHOST, safe="")),
        "REDIS_URL": _with_path(base["REDIS_URL"], f"/{REDIS_DB}"),
        "STACK_RUN_DIR": str(RUN_DIR.relative_to(ROOT)),
        "AUTH_JWT_KEY_FILE": str((RUN_DIR / "auth.pem").relative_to(ROOT)),
        "AUTH_HOST": HOST,
        "AUTH_PORT": str(AUTH_PORT),
        "ORDER_COMMAND_HOST": HOST,
        "ORDER_COMMAND_PORT": str(ORDER_COMMAND_PORT),
        "AUTH_RELAY_HOST": HOST,
        "AUTH_RELAY_PORT": str(AUTH_RELAY_PORT),
        "ORDER_COMMAND_RELAY_HOST": HOST,
        "ORDER_COMMAND_RELAY_PORT": str(ORDER_COMMAND_RELAY_PORT),
        "ORDER_QUERY_HOST": HOST,
        "ORDER_QUERY_PORT": str(ORDER_QUERY_PORT),
        "STATUS_WORKER_HOST": HOST,
        "STATUS_WORKER_PORT": str(STATUS_WORKER_PORT),
        "ORDER_COMMAND_URL": f"http://{HOST}:{ORDER_COMMAND_PORT}",
        "AUTH_URL": f"http://{HOST}:{AUTH_PORT}",
        "AUTH_TOKEN_URL": f"http://{HOST}:{AUTH_PORT}/internal/token",
        "JWKS_URL": f"http://{HOST}:{AUTH_PORT}/auth/.well-known/jwks.json",
        "STACK_PROCESSES": "1",  # one process of each service: what one create costs
        # ... with the connections `make run`'s two processes have between them (2 x 5): with
        # five, 64 clients queued for a connection past DEPENDENCY_TIMEOUT and got 503s.
        "ORDER_COMMAND_DB_POOL_SIZE": "10",
        "GATEWAY_HOST": HOST,
        "GATEWAY_PORT": str(GATEWAY_PORT),
        "GATEWAY_INTERNAL_PORT": str(INTERNAL_PORTS[GATEWAY_PORT]),
        "GATEWAY_AUTH_RATE": "100000r/s",
        "GATEWAY_AUTH_BURST": "100000",
        "GATEWAY_RATE": "100000r/s",
        "GATEWAY_BURST": "100000",
        "GATEWAY_ACCESS_LOG": "off",
        "GATEWAY_METRICS_PORT": "",  # no metrics process in the benchmark's deployment
        "LOG_LEVEL": "WARNING",
        "OTEL_TRACES_EXPORTER": "none",
        "AUTH_ACCESS_TOKEN_TTL_SECONDS": "7200",
        # An hour: no order moves on during a run, while the worker still sets every timer.
        "STATUS_ADVANCE_INTERVAL": "3600",
    }


def _fresh_vhost(url: str) -> None:
    """Delete and make the benchmark's vhost: no queue or message of an earlier run is left."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        raise RuntimeError(
            f"rabbitmqctl is not on PATH: the benchmark makes its own vhost {VHOST!r} with it"
        )
    user = urlsplit(url).username or "guest"
    for args in (
        ["delete_vhost", VHOST],
        ["add_vhost", VHOST],
        ["set_permissions", "-p", VHOST, user, ".*", ".*", ".*"],
    ):
        done = subprocess.run(
            [rabbitmqctl, *args], capture_output=True, timeout=60, check=False, text=True
        )
        if done.returncode != 0 and args[0] != "delete_vhost":
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")


def _fresh_stores(env: Mapping[str, str]) -> None:
    asyncio.run(drop_database(env["ORDERS_DATABASE_URL"]))  # the migration makes it anew
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    _fresh_vhost(env["RABBITMQ_URL"])


def _start_nginx(
    launcher: Launcher, name: str, env: Mapping[str, str], services: list[Service], port: int
) -> Child:
    ports = {"GATEWAY_PORT": str(port), "GATEWAY_INTERNAL_PORT": str(INTERNAL_PORTS[port])}
    conf = gateway.render({**env, **ports}, services, RUN_DIR / name)
    child = launcher.start(name, gateway.nginx_argv(conf), stop_signal=signal.SIGQUIT)
    servers.wait_ready(launcher, child, f"http://{HOST}:{port}/healthz")
    return child


@contextlib.contextmanager
def running() -> Iterator[Platform]:
    """Fresh stores, then the platform as `make run` starts it (one process of each service),
    the bare app and the ceiling's gateway; all stopped after."""
    env = platform_env(load_env())
    servers.require_free(
        *range(GATEWAY_PORT, STATUS_WORKER_PORT + 1),
        BARE_PORT,
        CEILING_GATEWAY_PORT,
        *INTERNAL_PORTS.values(),
    )
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    _fresh_stores(env)
    processes = load_processes(env)
    with Launcher(env, log_dir=RUN_DIR) as launcher:
        start_platform(launcher, env, processes, restart=False)
        nginx = launcher.named("nginx")
        servers.wait_ready(launcher, nginx, f"http://{HOST}:{GATEWAY_PORT}/healthz")
        bare = launcher.start(
            "bare_app",
            [sys.executable, "-m", "bench.bare_app", "--port", str(BARE_PORT)],
            env={"PYTHONPATH": str(ROOT)},
        )
        servers.wait_ready(launcher, bare, f"http://{HOST}:{BARE_PORT}/healthz")
        bare_upstreams = [
            dataclasses.replace(s, host=HOST, port=BARE_PORT)
            if s.name in ("order_command", "order_query")
            else s
            for s in processes.services
        ]
        yield Platform(
            env=env,
            # one process of each: CPU is charged to its group
            services={s.name: launcher.named(s.each()[0].name) for s in processes.services},
            gateway=nginx,
            ceiling_gateway=_start_nginx(
                launcher, "nginx_ceiling", env, bare_upstreams, CEILING_GATEWAY_PORT
            ),
            bare=bare,
        )
