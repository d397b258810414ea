"""The ceiling: a bare FastAPI app on the platform's paths, with none of our code behind them.

    python -m bench.bare_app --port 18305

`POST /orders` is one asyncpg INSERT in a transaction (BEGIN, INSERT, COMMIT); `GET /orders`
and `GET /orders/{id}` are one Redis GET each, of a blob the benchmark stored beforehand (a
real answer of the platform, so the bytes on the wire are the same). No auth, no validation,
no events: what FastAPI, asyncpg and redis-py cost on this machine, served by uvicorn as the
services are.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

from shared.db import asyncpg_dsn

ORDER_KEY = "bench:bare:order"  # GET /orders/{id} answers this blob
PAGE_KEY = "bench:bare:page"  # GET /orders answers this blob


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    dsn = asyncpg_dsn(os.environ["ORDERS_DATABASE_URL"])
    async with asyncpg.create_pool(dsn, min_size=4, max_size=20) as pool:
        await pool.execute(
            "create table if not exists bare_orders (id uuid primary key, body jsonb not null)"
        )
        app.state.pool = pool
        app.state.redis = Redis.from_url(os.environ["REDIS_URL"])
        try:
            yield
        finally:
            await app.state.redis.aclose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/orders", status_code=201)
async def create(request: Request) -> dict[str, Any]:
    body = await request.json()
    order_id = uuid.uuid4()
    async with request.app.state.pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "insert into bare_orders (id, body) values ($1, $2)", order_id, json.dumps(body)
        )
    return {"id": str(order_id), **body}


@app.get("/orders/{order_id}")
async def read(order_id: str, request: Request) -> Response:
    return Response(await request.app.state.redis.get(ORDER_KEY), media_type="application/json")


@app.get("/orders")
async def page(request: Request) -> Response:
    return Response(await request.app.state.redis.get(PAGE_KEY), media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
