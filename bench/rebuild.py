"""Benchmark `rebuild`: `order-query rebuild` replaying the event logs, beside a bare ceiling.

The logs are filled straight in Postgres: N orders, each created, paid, shipped and canceled
(4 events, as the status worker moves them), and a user for every 100 orders. The platform
runs as `make run` starts it (deploy/local_stack.py, one process of each service), on ports,
databases, a RabbitMQ vhost and a Redis database of the benchmark's own; the rebuild is the
operator's command, reading both logs through the services' `/internal/events`.

The ceiling, in the same run: the very keys and values the rebuild wrote, read back from its
generation, and written again under another prefix with redis-py pipelines of the same size:
Redis writes of the same data, and nothing else.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from bench.report import Section, table
from deploy.stack.background import running_stack, stack_settings
from deploy.stack.config import ROOT, load_env
from deploy.stack.databases import drop_database

from order_query.projection import Projection, prefix
from shared.db import asyncpg_dsn

BASE = 18400  # the gateway; services +1 to +4, relays +6 and +7, metrics +8, internal +9
REDIS_DB = 13
VHOST = "orders-bench-rebuild"
FULL, QUICK = 100_000, 5_000  # orders
PIPELINE = 2_000  # commands per pipeline in the ceiling, about as many as a rebuild's page


@dataclass(frozen=True)
class Figures:
    orders: int
    events: int
    users: int
    rebuild_seconds: float
    ceiling_seconds: float
    keys: int

    @property
    def ratio(self) -> float:
        return self.ceiling_seconds / self.rebuild_seconds


def _env() -> dict[str, str]:
    base = load_env()
    postgres = base["ORDERS_DATABASE_URL"].rsplit("/", 1)[0]
    redis_url = base["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DB}"
    rabbit = base["RABBITMQ_URL"].rstrip("/") + f"/{VHOST}"
    return {
        **base,
        **stack_settings(BASE, ROOT / ".run" / "bench" / "rebuild"),
        "STACK_PROCESSES": "1",
        "AUTH_DATABASE_URL": f"{postgres}/auth_bench_rebuild",
        "ORDERS_DATABASE_URL": f"{postgres}/orders_bench_rebuild",
        "REDIS_URL": redis_url,
        "RABBITMQ_URL": rabbit,
        "GATEWAY_ACCESS_LOG": "off",
        "LOG_LEVEL": "WARNING",
    }


def _fresh_vhost(url: str) -> None:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        raise RuntimeError("rabbitmqctl is not on PATH: the benchmark makes its own vhost")
    for args in (
        ["delete_vhost", VHOST],
        ["add_vhost", VHOST],
        ["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"],
    ):
        subprocess.run([rabbitmqctl, *args], capture_output=True, timeout=60, check=False)


_ORDERS = """
insert into orders (id, user_id, items, total_price, currency, status, version, is_deleted,
                    created_at, updated_at)
select md5('order' || n)::uuid, md5('user' || (n % $2))::uuid,
       '[{"name": "tea", "price": "2.50", "quantity": 2}]'::jsonb, 5.00, 'USD', 'CANCELED', 4,
       false, now(), now()
from generate_series(1, $1) n
"""
# Each order's four events, in the order they happened (the log's positions follow it): an
# order every 10 ms, each moved on a step a minute later, as the status worker does. Times in
# the payload are written as the writers write them (pydantic's `...05.000123Z`).
_EVENTS = """
insert into event_log (event_id, aggregate_id, version, type, schema_version, payload, actor,
                       occurred_at)
select gen_random_uuid(), o.id, s.version, s.type, s.schema_version,
       case when s.version = 1 then jsonb_build_object(
                'id', o.id, 'user_id', o.user_id, 'items', o.items, 'total_price', '5.00',
                'currency', 'USD', 'status', 'PENDING', 'version', 1, 'is_deleted', false,
                'created_at', o.at, 'updated_at', o.at)
            else jsonb_build_object('from_status', s.from_status, 'to_status', s.to_status,
                                    'changed_by', null) end,
       case when s.version = 1 then o.user_id end,
       o.created_at
from (select *, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at
      from orders) o
cross join (values (1, 'order.created', 2, null, null),
                   (2, 'order.status_changed', 1, 'PENDING', 'PAID'),
                   (3, 'order.status_changed', 1, 'PAID', 'SHIPPED'),
                   (4, 'order.status_changed', 1, 'SHIPPED', 'CANCELED'))
    as s(version, type, schema_version, from_status, to_status)
order by (row_number() over (order by o.id)) * 10 + (s.version - 1) * 6000, s.version
"""
_USERS = """
insert into users (id, username, email, password_hash, role)
select md5('user' || n)::uuid, 'bench' || n, 'bench' || n || '@example.com', 'x', 'user'
from generate_series(0, $1 - 1) n
"""
_USER_EVENTS = """
insert into event_log (event_id, aggregate_id, version, type, schema_version, payload, actor,
                       occurred_at)
select gen_random_uuid(), id, 1, 'user.registered', 1,
       jsonb_build_object('id', id, 'username', username, 'email', email, 'role', role), id, now()
from users order by username
"""


async def _fill(env: Mapping[str, str], orders: int) -> tuple[int, int]:
    """The logs as a platform that took `orders` orders would hold them; nothing to relay."""
    users = max(1, orders // 100)
    db = await asyncpg.connect(asyncpg_dsn(env["ORDERS_DATABASE_URL"]))
    try:
        await db.execute(_ORDERS, orders, users)
        await db.execute(_EVENTS)
        events: int = await db.fetchval("select count(*) from event_log")
        await db.execute("delete from unpublished_events")  # a past already published
        await db.execute("vacuum analyze event_log")
    finally:
        await db.close()
    auth = await asyncpg.connect(asyncpg_dsn(env["AUTH_DATABASE_URL"]))
    try:
        await auth.execute(_USERS, users)
        await auth.execute(_USER_EVENTS)
        await auth.execute("delete from unpublished_events")
    finally:
        await auth.close()
    return events, users


def _migrate_only(env: Mapping[str, str]) -> None:
    for command in (["auth-service", "migrate"], ["order-command", "migrate"]):
        binary = str(Path(sys.executable).parent / command[0])
        subprocess.run([binary, command[1]], env=dict(env), check=True, capture_output=True)


async def _ceiling(url: str) -> tuple[float, int]:
    """Write the live generation's keys again under another prefix, pipelined: the seconds it
    took, and how many keys."""
    client = aioredis.Redis.from_url(url)
    try:
        source = prefix(await Projection(client).live_generation())
        names = [key async for key in client.scan_iter(match=f"{source}*", count=5000)]
        data: list[tuple[str, str, Any]] = []
        for start in range(0, len(names), PIPELINE):
            batch = names[start : start + PIPELINE]
            async with client.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.type(key)
                kinds = [kind.decode() for kind in await pipe.execute()]
            async with client.pipeline(transaction=False) as pipe:
                for key, kind in zip(batch, kinds, strict=True):
                    if kind == "string":
                        pipe.get(key)
                    elif kind == "zset":
                        pipe.zrange(key, 0, -1, withscores=True)
                    else:
                        pipe.hgetall(key)
                values = await pipe.execute()
            for key, kind, value in zip(batch, kinds, values, strict=True):
                data.append((key.decode(), kind, dict(value) if kind == "zset" else value))
        target = "oq:ceiling:"
        began = time.perf_counter()
        for start in range(0, len(data), PIPELINE):
            async with client.pipeline(transaction=False) as pipe:
                for name, kind, value in data[start : start + PIPELINE]:
                    renamed = target + name[len(source) :]
                    if kind == "string":
                        pipe.set(renamed, value)
                    elif kind == "zset":
                        pipe.zadd(renamed, value)
                    else:
                        pipe.hset(renamed, mapping=value)
                await pipe.execute()
        took = time.perf_counter() - began
        async for key in client.scan_iter(match=f"{target}*", count=5000):
            await client.unlink(key)
        return took, len(data)
    finally:
        await client.aclose()


async def _flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def measure(orders: int) -> Figures:
    env = _env()
    for setting in ("AUTH_DATABASE_URL", "ORDERS_DATABASE_URL"):
        asyncio.run(drop_database(env[setting]))
    _fresh_vhost(env["RABBITMQ_URL"])
    asyncio.run(_flush(env["REDIS_URL"]))
    _migrate_only(env)
    events, users = asyncio.run(_fill(env, orders))
    with running_stack(env, within=120, stop_within=60):
        began = time.perf_counter()
        done = subprocess.run(
            [str(Path(sys.executable).parent / "order-query"), "rebuild"],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        rebuild_seconds = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"the rebuild failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        last = done.stdout.strip().splitlines()[-1]
        replayed = re.search(r"(\d+) order events", last)
        assert replayed and int(replayed.group(1)) == events, last
        ceiling_seconds, keys = asyncio.run(_ceiling(env["REDIS_URL"]))
    return Figures(orders, events, users, rebuild_seconds, ceiling_seconds, keys)


def run(*, quick: bool) -> Section:
    figures = measure(QUICK if quick else FULL)
    section = Section("rebuild", "Rebuilding the projection from the event logs")
    section.raw = {**figures.__dict__, "ratio": figures.ratio}
    section.add(
        f"{figures.orders:,} orders, each created, paid, shipped and canceled ({figures.events:,} "
        f"order events), and {figures.users:,} users, in the logs of a platform that `make run` "
        "starts (one process of each service); `order-query rebuild` replays both logs "
        "through the services' /internal/events into a new generation, then switches and "
        "deletes the old one. Ceiling, same run: the same keys and values "
        f"({figures.keys:,} keys) written again with redis-py pipelines of {PIPELINE:,} "
        "commands. ÷: the ceiling's time ÷ the rebuild's (target: 100,000 orders in under a "
        "minute; the earlier 0.5 or more was given up for one typed fold, decision 112).",
        "",
        *table(
            ["orders", "events", "rebuild s", "events/s", "ceiling s", "÷"],
            [
                [
                    figures.orders,
                    figures.events,
                    figures.rebuild_seconds,
                    figures.events / figures.rebuild_seconds,
                    figures.ceiling_seconds,
                    figures.ratio,
                ]
            ],
        ),
    )
    return section


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv).markdown())
    os._exit(0)
