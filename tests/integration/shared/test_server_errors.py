"""How a service's server answers what never reaches a route, and what a route fails on, seen on
a real socket: JSON always, and a kept-alive connection survives a 500 (behind the gateway,
that connection is shared by every client)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from fastapi import APIRouter, FastAPI

from shared.app import create_app
from shared.server import JsonErrorsProtocol
from tests.support.waiting import eventually

router = APIRouter()


@router.get("/crash")
async def crash() -> None:
    raise RuntimeError("a bug")


@router.get("/fine")
async def fine() -> dict[str, str]:
    return {"status": "fine"}


def _app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    return create_app(title="t", version="1", lifespan=lifespan, routers=[router])


@pytest.fixture
async def port() -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free: int = probe.getsockname()[1]
    config = uvicorn.Config(
        _app(), host="127.0.0.1", port=free, http=JsonErrorsProtocol, log_config=None
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started), until=bool, timeout=10)
    yield free
    server.should_exit = True
    await serving


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes]:
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def test_a_control_byte_in_a_header_is_a_json_400(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /fine HTTP/1.1\r\nHost: t\r\nX-Note: a\x01b\r\n\r\n"
    status, headers, body = await _exchange(reader, writer, request)
    writer.close()
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "bad_request"


async def test_a_500_leaves_the_kept_alive_connection_serving(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    crashed = await _exchange(reader, writer, b"GET /crash HTTP/1.1\r\nHost: t\r\n\r\n")
    assert crashed[0] == 500
    assert json.loads(crashed[2])["error"]["code"] == "internal_error"
    assert crashed[1].get("connection") != "close"
    then = await _exchange(reader, writer, b"GET /fine HTTP/1.1\r\nHost: t\r\n\r\n")
    writer.close()
    assert then[0] == 200 and json.loads(then[2]) == {"status": "fine"}
