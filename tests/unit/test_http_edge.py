"""The outermost layers of every service's app: nothing escapes to the server, and a body past
the limit is refused whether its length is declared or not."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from shared.app import create_app

router = APIRouter()


class Note(BaseModel):
    text: str


@router.get("/crash")
async def crash() -> None:
    raise RuntimeError("a bug")


@router.post("/notes")
async def add_note(note: Note) -> dict[str, int]:
    return {"length": len(note.text)}


def _app() -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    return create_app(title="t", version="1", lifespan=lifespan, routers=[router], body_limit=1000)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = _app()
    async with app.router.lifespan_context(app):
        # raise_app_exceptions (the default): an exception that reached the server would fail here
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


async def test_an_unhandled_exception_is_a_json_500_and_never_reaches_the_server(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/crash")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


async def test_a_declared_length_past_the_limit_is_413_before_the_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/notes", json={"text": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("length", ["abc", "9" * 5000])
async def test_a_length_that_is_not_a_small_number_is_413(
    client: httpx.AsyncClient, length: str
) -> None:
    response = await client.post(
        "/notes", content=b"{}", headers={"Content-Length": length, "Content-Type": "text/plain"}
    )
    assert response.status_code == 413


async def test_a_streamed_body_past_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    response = await client.post(
        "/notes", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_a_body_within_the_limit_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post("/notes", json={"text": "x" * 500})
    assert response.json() == {"length": 500}


async def test_no_path_redirects_to_its_other_form(client: httpx.AsyncClient) -> None:
    """A redirect would be built from the client's Host header."""
    response = await client.post("/notes/", json={"text": "x"}, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
