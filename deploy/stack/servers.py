"""`check`: Postgres, Redis and RabbitMQ answer, and nginx is installed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit


@dataclass(frozen=True)
class Server:
    name: str
    setting: str
    default_port: int
    start: str  # how to start it on a Debian-like machine with the package installed
    image: str
    container_port: int
    ready: str  # run in the container: exit status 0 once the server answers


SERVERS = [
    Server(
        "Postgres",
        "AUTH_DATABASE_URL",
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        "postgres:16",
        5432,
        "pg_isready --username=postgres --host=127.0.0.1",
    ),
    Server(
        "Redis",
        "REDIS_URL",
        6379,
        'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port {port} --save "" '
        "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log",
        "redis:7",
        6379,
        "redis-cli ping",
    ),
    Server(
        "RabbitMQ",
        "RABBITMQ_URL",
        5672,
        "rabbitmq-server -detached",
        "rabbitmq:3-management",
        5672,
        "rabbitmq-diagnostics --quiet check_port_connectivity",
    ),
]
LOOPBACK = {"127.0.0.1", "localhost"}
NGINX_INSTALL = "apt-get update -qq && apt-get install -y -qq nginx"


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def in_use(address: str) -> bool:
    """Something already listens on host:port (an IPv6 host in brackets)."""
    host, _, port = address.rpartition(":")
    return reachable(host.strip("[]"), int(port), timeout=0.5)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(path, os.X_OK)),
        None,
    )


def check(env: Mapping[str, str]) -> bool:
    """True when everything is there; otherwise says what is missing and how to start it."""
    missing: list[tuple[Server, SplitResult]] = []
    for server in SERVERS:
        url = urlsplit(env[server.setting])
        host, port = url.hostname or "127.0.0.1", url.port or server.default_port
        if reachable(host, port):
            print(f"ok: {server.name} answers on {host}:{port}")
        else:
            missing.append((server, url))
    if missing and _docker_answers():
        missing = [(s, url) for s, url in missing if not _start_container(s, url)]
    for server, url in missing:
        where = f"{url.hostname}:{url.port or server.default_port}"
        print(f"MISSING: {server.name} does not answer on {where} ({server.setting}).")
        print(f"  start it with:  {server.start.format(port=url.port or server.default_port)}")
    if missing:
        print("  or run the whole system in Docker instead:  docker compose up")
    return _ensure_nginx() and not missing


MANAGEMENT_ENABLE = "rabbitmq-plugins enable rabbitmq_management"


def management_ui(
    env: Mapping[str, str],
    *,
    answers: Callable[[str, int], bool] = reachable,
    tool: Callable[[str], str | None] = shutil.which,
    run: Callable[[list[str]], int] | None = None,
) -> str:
    """RabbitMQ's management UI for `make run`: where it answers; else, when the broker is on
    this machine and its plugin tool is here (as root), it is enabled (it answers a few
    seconds later); else the line that enables it. RABBITMQ_MANAGEMENT_PORT empty: no look."""
    port_setting = env.get("RABBITMQ_MANAGEMENT_PORT", "15672").strip()
    if not port_setting:
        return "ok: RabbitMQ management UI not looked for (RABBITMQ_MANAGEMENT_PORT is empty)"
    broker = urlsplit(env["RABBITMQ_URL"])
    host, port = broker.hostname or "127.0.0.1", int(port_setting)
    where = f"http://{host}:{port} (guest / guest unless RABBITMQ_URL says otherwise)"
    if answers(host, port):
        return f"ok: RabbitMQ management UI at {where}"
    enable = tool("rabbitmq-plugins")
    if host in LOOPBACK and enable is not None and os.geteuid() == 0:
        command = [enable, "enable", "rabbitmq_management"]
        code = (run or _run_quietly)(command)
        if code == 0:
            return f"ok: RabbitMQ management UI enabled ({MANAGEMENT_ENABLE}): {where}"
    return (
        f"note: RabbitMQ's management UI does not answer at {host}:{port}. On the broker's "
        f"machine, as root:  {MANAGEMENT_ENABLE}  (then {where})"
    )


def _run_quietly(command: list[str]) -> int:
    try:
        return subprocess.run(command, capture_output=True, timeout=60, check=False).returncode
    except subprocess.TimeoutExpired:
        return 1


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _start_container(server: Server, url: SplitResult) -> bool:
    """Start (or restart) a container for `server`; True once the server inside answers."""
    host, port = url.hostname or "127.0.0.1", url.port or server.default_port
    if host not in LOOPBACK:
        return False
    name = f"orders-local-{server.name.lower()}-{port}"
    user, password = unquote(url.username or ""), unquote(url.password or "")
    env = {
        "Postgres": {"POSTGRES_HOST_AUTH_METHOD": "trust", "POSTGRES_PASSWORD": password},
        "RabbitMQ": {"RABBITMQ_DEFAULT_USER": user, "RABBITMQ_DEFAULT_PASS": password},
    }.get(server.name, {})
    print(f"starting {server.name} in the Docker container {name} ({server.image})")
    flags = [f"--env={key}={value}" for key, value in env.items() if value]
    publish = f"--publish=127.0.0.1:{port}:{server.container_port}"
    try:
        if _docker("start", name, timeout=60):
            _docker("run", "--detach", f"--name={name}", publish, *flags, server.image, timeout=600)
        # The published port accepts at once (docker-proxy): ask the server inside instead.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not _docker("exec", name, *server.ready.split(), timeout=10):
                print(f"ok: {server.name} answers on {host}:{port} (container {name})")
                return True
            time.sleep(1)
    except subprocess.TimeoutExpired:
        pass
    print(f"{server.name} in the container {name} did not come up; see `docker logs {name}`")
    return False


def _docker(*args: str, timeout: float) -> int:
    done = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, check=False)
    return done.returncode


def _ensure_nginx() -> bool:
    if nginx_binary():
        print("ok: nginx is installed")
        return True
    if os.geteuid() != 0:
        print(f"MISSING: nginx. Install it as root:  sudo sh -c '{NGINX_INSTALL}'")
        return False
    print(f"nginx is missing; installing it:  {NGINX_INSTALL}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["sh", "-c", NGINX_INSTALL], env=env, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        print("MISSING: nginx (the install did not finish within 10 minutes)")
    if nginx_binary():
        return True
    print(f"MISSING: nginx, and `{NGINX_INSTALL}` did not install it")
    return False


def ensure_installed(binary: str, package: str) -> str | None:
    """The path of `binary`, installing Debian's `package` first when it is missing and this
    is root (as `make run` does for nginx); None if it cannot be had."""
    found = shutil.which(binary) or next(
        (p for p in (f"/usr/bin/{binary}", f"/usr/sbin/{binary}") if os.access(p, os.X_OK)), None
    )
    if found or os.geteuid() != 0:
        return found
    command = f"apt-get update -qq && apt-get install -y -qq {package}"
    print(f"{binary} is missing; installing it:  {command}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["sh", "-c", command], env=env, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        return None
    return shutil.which(binary)
