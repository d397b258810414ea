"""Where the test servers are: the environment, else the local default ports, else
testcontainers when a Docker engine answers, else a clear message of what is missing."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULTS = {
    "POSTGRES_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432",
    "RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
}
HOW_TO_START = {
    "POSTGRES_URL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "RABBITMQ_URL": "rabbitmq-server -detached",
    "REDIS_URL": "redis-server --daemonize yes --port 6379 --save '' --appendonly no",
}


@dataclass(frozen=True)
class Servers:
    postgres: str  # a SQLAlchemy URL without a database name
    rabbitmq: str
    redis: str

    def database(self, name: str) -> str:
        """`name`, plus TEST_DATABASE_SUFFIX: two checkouts can test against one server."""
        suffix = os.environ.get("TEST_DATABASE_SUFFIX", "")
        return f"{self.postgres.rstrip('/')}/{name}{suffix}"


def reachable(url: str, timeout: float = 2.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout):
            return True
    except OSError:
        return False


def docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def provide_servers() -> Iterator[Servers]:
    urls = {name: os.environ.get(name, default) for name, default in DEFAULTS.items()}
    missing = [name for name, url in urls.items() if not reachable(url)]
    if not missing:
        yield Servers(urls["POSTGRES_URL"], urls["RABBITMQ_URL"], urls["REDIS_URL"])
        return
    if not docker_available():
        lines = [
            f"  {name} ({urls[name]}): start it with `{HOW_TO_START[name]}`" for name in missing
        ]
        raise RuntimeError(
            "These test servers cannot be reached, and no Docker engine answers for "
            "testcontainers:\n" + "\n".join(lines) + "\nOr point the variables at running servers."
        )
    with contextlib.ExitStack() as stack:
        for name in missing:
            urls[name] = stack.enter_context(_container(name))
        yield Servers(urls["POSTGRES_URL"], urls["RABBITMQ_URL"], urls["REDIS_URL"])


@contextlib.contextmanager
def _container(name: str) -> Iterator[str]:
    if name == "POSTGRES_URL":
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer(
            "postgres:16-alpine", username="postgres", password="postgres"
        ) as pg:
            host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
            yield f"postgresql+asyncpg://postgres:postgres@{host}:{port}"
    elif name == "RABBITMQ_URL":
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-management") as mq:
            host, port = mq.get_container_host_ip(), mq.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
    else:
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
