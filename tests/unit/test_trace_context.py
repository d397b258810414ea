"""A request's trace context when no span is recorded: the caller's trace goes on, or one
starts; either way the request runs under its ids (logs and the outbox carry them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, FastAPI
from opentelemetry import propagate, trace

from shared.app import create_app

router = APIRouter()


@router.get("/context")
async def context() -> dict[str, str]:
    """What a handler would write to the outbox: the current trace context."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.asynccontextmanager
async def _client() -> AsyncIterator[httpx.AsyncClient]:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = create_app(title="t", version="1", lifespan=lifespan, routers=[router])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_the_callers_trace_goes_on_through_the_request() -> None:
    async with _client() as client:
        carried = (
            await client.get(
                "/context", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
            )
        ).json()
    assert carried["traceparent"].split("-")[1] == TRACE_ID


async def test_a_request_without_a_trace_starts_one() -> None:
    async with _client() as client:
        first = (await client.get("/context")).json()["traceparent"].split("-")[1]
        second = (await client.get("/context")).json()["traceparent"].split("-")[1]
    assert trace.format_trace_id(trace.INVALID_TRACE_ID) not in (first, second)
    assert first != second
