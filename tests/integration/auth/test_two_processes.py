"""Two processes of the auth service on one database (as `make run` and every deployment run
it): a token issued by one is honoured by the other, and the refresh-token families are one
record: a token rotated on one process and reused on the other revokes the family, and two
refreshes of one token racing on both processes let exactly one win."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth_service.main import create_app
from auth_service.settings import AuthSettings


@pytest.fixture
async def second(auth_settings: AuthSettings) -> AsyncIterator[httpx.AsyncClient]:
    """Another process of the auth service: its own app, the same database and key."""
    app = create_app(auth_settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth-2") as http:
            yield http


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh", json={"refresh_token": token})


async def test_a_token_from_one_process_is_honoured_by_the_other(
    client: httpx.AsyncClient, second: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await second.get("/auth/me", headers=bearer)).status_code == 200
    rotated = await _refresh(second, tokens["refresh_token"])
    assert rotated.status_code == 200
    assert (await _refresh(client, rotated.json()["refresh_token"])).status_code == 200


async def test_a_token_rotated_on_one_process_and_reused_on_the_other_revokes_the_family(
    client: httpx.AsyncClient, second: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    successor = (await _refresh(client, tokens["refresh_token"])).json()["refresh_token"]
    reuse = await _refresh(second, tokens["refresh_token"])
    assert reuse.status_code == 401
    assert (await _refresh(client, successor)).status_code == 401
    assert (await _refresh(second, successor)).status_code == 401


async def test_one_token_refreshed_on_both_processes_at_once_is_one_rotation(
    client: httpx.AsyncClient, second: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    answers = await asyncio.gather(
        *(
            _refresh(process, tokens["refresh_token"])
            for process in (client, second, client, second)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]
    # A race is a reuse: the family is revoked, the winner's successor with it.
    [winner] = [a for a in answers if a.status_code == 200]
    assert (await _refresh(second, winner.json()["refresh_token"])).status_code == 401
