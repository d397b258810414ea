"""A private stack for the fault suite: the platform as `make run` starts it (deploy/local_stack.py,
two processes of each service), on ports, databases, a Redis server and a RabbitMQ node of its
own, so faults hurt nothing else on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from deploy.stack.background import RunningStack, running_stack, stack_settings
from deploy.stack.config import ROOT, load_env
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
    base: int  # the gateway; the services +1 to +4, relays +6, +7, metrics +8, internal +9
    interval: float  # STATUS_ADVANCE_INTERVAL
    env: dict[str, str] = field(default_factory=dict)
    node: RabbitNode | None = None
    running: RunningStack | None = None
    redis: Redis | None = None

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.base}"

    def database(self, setting: str) -> str:
        return self.env[setting]

    def stop_services(self) -> None:
        """Stop the runner and every service (the servers stay up)."""
        assert self.running is not None
        self.running.stop()

    def pids(self) -> dict[str, int]:
        assert self.running is not None
        return self.running.pids()

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
    return {
        **load_env(),
        **stack_settings(base, run_dir),
        "STACK_PROCESSES": str(PROCESSES),
        "RABBITMQ_URL": rabbitmq,
        "REDIS_URL": redis,
        "AUTH_DATABASE_URL": f"{postgres}/auth_chaos{suffix}",
        "ORDERS_DATABASE_URL": f"{postgres}/orders_chaos{suffix}",
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
            with running_stack(stack.env, within=START_WITHIN, stop_within=40) as running:
                stack.running = running
                yield stack
        finally:
            await stack.redis.aclose()
            await node.stop()
