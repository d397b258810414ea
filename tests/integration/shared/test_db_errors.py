"""A database error a route did not expect is a JSON 500 whose log line names the error and the
statement, never the statement's values: they may be a client's data or a secret."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import text

from shared.app import create_app
from shared.db import DATABASE, create_engine
from shared.logs import JsonFormatter


async def test_the_log_of_a_database_error_holds_no_value(
    orders_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    router = APIRouter()
    engine = create_engine(orders_db_url)
    secret = "-".join(["hunter2", "x"])  # built here: a traceback shows source lines

    @router.get("/cast")
    async def cast() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("select cast(:value as integer)"), {"value": secret})

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = create_app(
        title="t", version="1", lifespan=lifespan, routers=[router], drivers=[DATABASE]
    )
    caplog.set_level(logging.INFO)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/cast")
    assert response.status_code == 500
    written = "\n".join(JsonFormatter("t").format(record) for record in caplog.records)
    assert "select cast" in written and "DataError" in written
    assert secret not in written
