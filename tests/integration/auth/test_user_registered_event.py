"""`user.registered` really reaches RabbitMQ, through the outbox, with the envelope of DESIGN.md."""

from __future__ import annotations

import httpx

from tests.support.factories import user_body
from tests.support.rabbit import capture
from tests.support.servers import Servers


async def test_signing_up_publishes_user_registered(
    client: httpx.AsyncClient, servers: Servers
) -> None:
    async with capture(servers.rabbitmq, "auth.events", "user.registered") as captured:
        body = user_body()
        user = (await client.post("/auth/create_user", json=body)).json()
        event = await captured.wait_for(lambda e: e["aggregate_id"] == user["id"])
    assert event["type"] == "user.registered"
    assert event["version"] == 1
    assert event["payload"] == {
        "id": user["id"],
        "username": body["username"],
        "email": body["email"],
        "role": "user",
    }
    assert {"event_id", "occurred_at"} <= set(event)
    [message] = [m for m in captured.messages if m.message_id == event["event_id"]]
    assert message.delivery_mode == 2  # persistent
    assert "traceparent" in (message.headers or {})


async def test_a_refused_sign_up_publishes_nothing(
    client: httpx.AsyncClient, servers: Servers, registered: dict[str, str]
) -> None:
    async with capture(servers.rabbitmq, "auth.events", "user.registered") as captured:
        taken = await client.post(
            "/auth/create_user", json=user_body(username=registered["username"])
        )
        assert taken.status_code == 409
        marker = (await client.post("/auth/create_user", json=user_body())).json()
        await captured.wait_for(lambda e: e["aggregate_id"] == marker["id"])
    assert [e["payload"]["username"] for e in captured.bodies()] == [marker["username"]]
