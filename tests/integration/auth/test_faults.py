"""Faults: Postgres down or hanging is a fast 503 and the service recovers by itself; a burst
of logins does not stall the other requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import make_url

from auth_service.main import create_app
from tests.integration.conftest import make_auth_settings
from tests.support.factories import user_body
from tests.support.servers import Servers
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually


@pytest.fixture
async def pg_proxy(servers: Servers) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(servers.postgres)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def proxied_client(
    servers: Servers, auth_db_url: str, pg_proxy: TcpProxy, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The auth service reaching Postgres only through a proxy the test can cut."""
    url = make_url(auth_db_url).set(host="127.0.0.1", port=pg_proxy.port)
    settings = make_auth_settings(
        servers, url.render_as_string(hide_password=False), tmp_path / "auth.pem"
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
            yield http


async def _timed(request: asyncio.Future[httpx.Response] | object) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = await request  # type: ignore[misc]
    return response, time.monotonic() - start


@pytest.mark.parametrize("fault", ["down", "hanging"])
async def test_postgres_fault_is_503_within_2_s_and_the_service_recovers(
    proxied_client: httpx.AsyncClient, pg_proxy: TcpProxy, fault: str
) -> None:
    assert (await proxied_client.post("/auth/create_user", json=user_body())).status_code == 201
    await (pg_proxy.cut() if fault == "down" else pg_proxy.hang())

    response, took = await _timed(proxied_client.post("/auth/create_user", json=user_body()))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "dependency_unavailable"
    assert took < 2.0

    ready, took = await _timed(proxied_client.get("/readyz"))
    assert ready.status_code == 503
    assert ready.json()["error"]["details"]["postgres"] == "unavailable"
    assert took < 2.0

    await pg_proxy.restore()
    await eventually(
        lambda: proxied_client.post("/auth/create_user", json=user_body()),
        until=lambda r: r.status_code == 201,
        what="sign-up after Postgres came back",
    )
    assert (await proxied_client.get("/readyz")).status_code == 200


async def test_a_burst_of_logins_does_not_stall_other_requests(
    client: httpx.AsyncClient, registered: dict[str, str]
) -> None:
    """Hashing runs on threads: a cheap request started after 20 logins finishes before them."""
    form = {"username": registered["username"], "password": registered["password"]}
    sent = asyncio.Semaphore(0)

    async def on_request(request: httpx.Request) -> None:
        sent.release()

    client.event_hooks["request"].append(on_request)
    try:
        logins = [asyncio.create_task(client.post("/auth/token", data=form)) for _ in range(20)]
        async with asyncio.timeout(10):  # every login on its way before the cheap request
            for _ in logins:
                await sent.acquire()
    finally:
        client.event_hooks["request"].remove(on_request)
    cheap = await client.get("/auth/.well-known/jwks.json")
    assert cheap.status_code == 200
    still_hashing = sum(not task.done() for task in logins)
    assert still_hashing > 0
    assert all(r.status_code == 200 for r in await asyncio.gather(*logins))
