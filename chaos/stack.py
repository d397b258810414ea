"""A private stack for the fault suite: the platform as `make run` starts it (deploy/local_stack.py,
two processes of each service), on ports, databases, a Redis server and a RabbitMQ node of its
own, so faults hurt nothing else on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from deploy.stack.config import PORT_STRIDE, ROOT, load_env
from deploy.stack.databases import drop_database
from deploy.stack.rabbit_node import RabbitNode
from deploy.stack.redis_server import private_redis
from redis.asyncio import Redis
from sqlalchemy import make_url

from shared.db import asyncpg_dsn

SERVICES = ("auth", "order_command", "order_query", "status_worker")
PROCESSES = 2
START_WITHIN = 120.0


@dataclass
class ChaosStack:
    run_dir: Path
    base: int  # the gateway's port; the services on the next four, the internal side at +9
    interval: float  # STATUS_ADVANCE_INTERVAL
    env: dict[str, str] = field(default_factory=dict)
    node: RabbitNode | None = None
    runner: subprocess.Popen[bytes] | None = None
    redis: Redis | None = None

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.base}"

    @property
    def log(self) -> Path:
        return self.run_dir / "stack.log"

    def database(self, setting: str) -> str:
        return self.env[setting]

    def ports(self) -> list[int]:
        first = [self.base + n for n in range(1, 5)]
        return [self.base, self.base + 9] + [
            p + i * PORT_STRIDE for p in first for i in range(PROCESSES)
        ]

    def events(self, event: str) -> list[dict[str, Any]]:
        """The runner's own JSON lines of one kind."""
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

    def stop_services(self) -> None:
        """Stop the runner and every service (the servers stay up)."""
        if self.runner is not None and self.runner.poll() is None:
            self.runner.send_signal(signal.SIGTERM)
            try:
                self.runner.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.runner.kill()
                self.runner.wait()

    def kill(self, process: str) -> int:
        pid = self.pids()[process]
        os.kill(pid, signal.SIGKILL)
        return pid

    async def stop_broker(self) -> None:
        assert self.node is not None
        await self.node.stop()

    async def start_broker(self) -> None:
        assert self.node is not None
        await self.node.start()

    async def terminate_connections(self) -> int:
        """Every connection of the services to their databases, cut by Postgres itself."""
        cut = 0
        for setting in ("AUTH_DATABASE_URL", "ORDERS_DATABASE_URL"):
            url = self.env[setting]
            admin = await asyncpg.connect(asyncpg_dsn(url))
            try:
                cut += await admin.fetchval(
                    "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity"
                    " where datname = $1 and pid <> pg_backend_pid()) t",
                    make_url(url).database,
                )
            finally:
                await admin.close()
        return cut

    async def flush_redis(self) -> None:
        assert self.redis is not None
        await self.redis.flushdb()

    async def rebuild(self) -> tuple[int, str]:
        """`order-query rebuild`, as an operator runs it: its exit status and its last line."""
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "order-query"),
            "rebuild",
            env=self.env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), timeout=300)
        lines = out.decode(errors="replace").strip().splitlines()
        return process.returncode or 0, lines[-1] if lines else ""

    def rss(self) -> dict[str, int]:
        """Resident memory of each service process, in bytes."""
        found = {}
        for name, pid in self.pids().items():
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        found[name] = int(line.split()[1]) * 1024
        return found


def _env(run_dir: Path, base: int, interval: float, rabbitmq: str, redis: str) -> dict[str, str]:
    postgres = os.environ.get("POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
    suffix = os.environ.get("TEST_DATABASE_SUFFIX", "")  # as the tests' databases
    internal = f"http://127.0.0.1:{base + 9}"
    ports = {name: base + n for n, name in enumerate(SERVICES, 1)}
    return {
        **load_env(),
        "STACK_RUN_DIR": str(run_dir),
        "STACK_PROCESSES": str(PROCESSES),
        "RABBITMQ_URL": rabbitmq,
        "REDIS_URL": redis,
        "AUTH_DATABASE_URL": f"{postgres}/auth_chaos{suffix}",
        "ORDERS_DATABASE_URL": f"{postgres}/orders_chaos{suffix}",
        **{f"{name.upper()}_HOST": "127.0.0.1" for name in SERVICES},
        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "ORDER_COMMAND_URL": f"{internal}/order_command",
        "AUTH_URL": f"{internal}/auth",
        "AUTH_TOKEN_URL": f"{internal}/auth/internal/token",
        "JWKS_URL": f"{internal}/auth/auth/.well-known/jwks.json",
        "AUTH_JWT_KEY_FILE": str(run_dir / "keys" / "auth.pem"),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(base),
        "GATEWAY_INTERNAL_PORT": str(base + 9),
        "GATEWAY_METRICS_PORT": str(base + 8),
        "GATEWAY_AUTH_RATE": "1000r/s",
        "GATEWAY_AUTH_BURST": "1000",
        "GATEWAY_RATE": "10000r/s",
        "GATEWAY_BURST": "10000",
        "GATEWAY_ACCESS_LOG": "off",
        "STATUS_ADVANCE_INTERVAL": str(interval),
        "LOG_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def chaos_stack(run_dir: Path, base: int, interval: float) -> AsyncIterator[ChaosStack]:
    """The stack, up; stopped after, with its broker node and Redis."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with private_redis(base + 15, run_dir / "redis") as redis_url:
        assert redis_url is not None, "the fault suite needs redis-server on this machine"
        node = RabbitNode(run_dir / "rabbit")
        await node.start()
        stack = ChaosStack(run_dir, base, interval, node=node)
        stack.env = _env(run_dir, base, interval, node.url, redis_url)
        for setting in ("AUTH_DATABASE_URL", "ORDERS_DATABASE_URL"):
            await drop_database(stack.env[setting])
        stack.redis = Redis.from_url(redis_url)
        try:
            with stack.log.open("wb") as output:
                stack.runner = subprocess.Popen(
                    [sys.executable, str(ROOT / "deploy" / "local_stack.py"), "run"],
                    cwd=ROOT,
                    env=stack.env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + START_WITHIN
            while not stack.events("up"):
                if stack.runner.poll() is not None or time.monotonic() > deadline:
                    tail = stack.log.read_text(errors="replace")[-4000:]
                    raise RuntimeError(f"the chaos stack did not come up:\n{tail}")
                await asyncio.sleep(0.2)
            yield stack
        finally:
            stack.stop_services()
            await stack.redis.aclose()
            await node.stop()
