"""order_query against real Redis and RabbitMQ, with the real order_command in-process as the
source of its events and of its repairs, and access tokens from a test key.

order_command is the session's one app (tests/integration/conftest.py), and its relay
publishes to the broker as in production; order_query's queue is bound to the same
exchange, so every order a test makes through order_command reaches whichever order_query
app the test runs.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import httpx
import pytest
from aiormq import spec
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from redis.asyncio import Redis

from order_query.command_side import CommandSide, InternalApi
from order_query.connections import Reach
from order_query.main import create_app as create_query_app
from order_query.projection import Projection, history_key, order_key, prefix
from order_query.queues import ORDERS_QUEUE, USERS_QUEUE
from order_query.settings import OrderQuerySettings
from shared.events import Envelope, Role, UserRegistered
from shared.service_tokens import ServiceTokens
from shared.topology import (
    AUTH_EVENTS,
    ORDERS_EVENTS,
    consumer_queue,
    dead_letter_queue,
    declare_dead_letter_queue,
    declare_exchanges,
)
from tests.support.factories import user_body
from tests.support.servers import Servers
from tests.support.tokens import TEST_KEYS, Caller, bearer
from tests.support.waiting import eventually

ORDERS = consumer_queue(ORDERS_QUEUE, "order.*")
USERS = consumer_queue(USERS_QUEUE, UserRegistered.ROUTING_KEY)
ORDERS_DLQ = dead_letter_queue(ORDERS_QUEUE).name
SERVICE = Caller(Role.SERVICE)
ADMIN = Caller(Role.ADMIN)


def order_body(*prices: str, **overrides: Any) -> dict[str, Any]:
    """An order of one item per price (one tea at 2.50 by default)."""
    items = [{"name": f"item {i}", "price": p, "quantity": 1} for i, p in enumerate(prices)]
    return {"items": items or [{"name": "tea", "price": "2.50", "quantity": 1}], **overrides}


# --- order_command: the source of events and of repairs ---------------------------------


# `command_app`: the session's one order_command (tests/integration/conftest.py); a second
# would compete with it for its command queue.


@pytest.fixture(scope="session")
async def command(command_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """order_command's HTTP API, over ASGI."""
    transport = httpx.ASGITransport(app=command_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as http:
        yield http


async def create(command: httpx.AsyncClient, by: Caller, *prices: str) -> dict[str, Any]:
    response = await command.post("/orders", json=order_body(*prices), headers=by.headers)
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


async def held(command: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    """The order as order_command holds it (deleted ones too)."""
    response = await command.get(f"/internal/orders/{order_id}", headers=SERVICE.headers)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


async def every_order_held(command: httpx.AsyncClient) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
        page = (
            await command.get("/internal/orders", params=params, headers=SERVICE.headers)
        ).json()
        orders += page["items"]
        if page["next_after"] is None:
            return orders
        after = page["next_after"]


# --- how order_query reaches order_command ------------------------------------------------


class ServiceToken:
    """The token order_query shows order_command: a service's, or, to play a deployment
    whose credentials are wrong, a user's (which order_command refuses with 403)."""

    def __init__(self) -> None:
        self.role = Role.SERVICE

    async def headers(self) -> dict[str, str]:
        return bearer(uuid.uuid4(), self.role)


class Network(httpx.AsyncBaseTransport):
    """order_command over ASGI, with a switch to play it down (connections refused)."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused (the test's switch)", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Link:
    token: ServiceToken
    network: Network
    command_side: CommandSide


@contextlib.asynccontextmanager
async def link_to(command_app: FastAPI) -> AsyncIterator[Link]:
    token, network = ServiceToken(), Network(command_app)
    async with httpx.AsyncClient(transport=network) as http:
        yield Link(token, network, CommandSide("http://orders", http, token))


@pytest.fixture
async def link(command_app: FastAPI) -> AsyncIterator[Link]:
    async with link_to(command_app) as made:
        yield made


# --- the auth service: the source of users' names, and of the users' log ---------------


@pytest.fixture(scope="session")
async def auth(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The auth service's HTTP API, over ASGI."""
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as http:
        yield http


@pytest.fixture
def users_log(auth: httpx.AsyncClient) -> InternalApi:
    """The auth service's event log, read as order_query's rebuild reads it."""
    tokens = ServiceTokens(
        "http://auth/internal/token", "order_query", "local-order-query-secret", auth
    )
    return InternalApi("http://auth", auth, tokens, timeout=30, name="auth")


async def register(auth: httpx.AsyncClient) -> tuple[Caller, str]:
    """A user signed up at the auth service (so the users' log and `user.registered` name
    them), and their username; the caller's token comes from the tests' key."""
    body = user_body()
    created = await auth.post("/auth/create_user", json=body)
    assert created.status_code == 201, created.text
    return Caller(user_id=uuid.UUID(created.json()["id"])), body["username"]


# --- the broker: order_query's queues, and putting messages in them ---------------------


@dataclass
class Rabbit:
    """The tests' own connection: a channel (publisher confirms on) to publish on, and a
    fresh channel for each look at a queue (a robust channel remembers a queue's first
    declaration, counts included)."""

    connection: aio_pika.abc.AbstractRobustConnection
    channel: aio_pika.abc.AbstractChannel

    async def queue(self, name: str) -> spec.Queue.DeclareOk:
        channel = await self.connection.channel()
        try:
            declared = await channel.declare_queue(name, passive=True)
            return declared.declaration_result
        finally:
            await channel.close()


@pytest.fixture(scope="session")
async def rabbit(servers: Servers) -> AsyncIterator[Rabbit]:
    connection = await aio_pika.connect_robust(servers.rabbitmq)
    try:
        yield Rabbit(connection, await connection.channel())
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
async def query_queues(servers: Servers) -> None:
    """order_query's queues, declared and bound as the service declares them, and emptied of
    what other test sessions or other services' tests left there (events of orders this
    session's order_command never heard of)."""
    broker = RabbitBroker(servers.rabbitmq)
    await broker.connect()
    try:
        await declare_exchanges(broker)
        for queue, exchange in ((ORDERS, ORDERS_EVENTS), (USERS, AUTH_EVENTS)):
            name = queue.name.rsplit(".dl", 1)[0]
            await declare_dead_letter_queue(broker, name)
            declared = await broker.declare_queue(queue)
            await declared.bind(exchange.name, routing_key=queue.routing_key)
            await declared.purge()
            await (await broker.declare_queue(dead_letter_queue(name))).purge()
    finally:
        await broker.stop()


async def publish_to_queue(rabbit: Rabbit, body: bytes) -> None:
    """Straight into order_query's order queue, as a redelivery or a replay would put it."""
    await rabbit.channel.default_exchange.publish(
        aio_pika.Message(
            body, content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        ),
        routing_key=ORDERS.name,
    )


async def publish_user(rabbit: Rabbit, user: Caller, username: str) -> None:
    """What the auth service says when `user` registers."""
    payload = UserRegistered(
        id=user.id, username=username, email=f"{username}@example.com", role=user.role
    )
    envelope = Envelope.wrap(payload, aggregate_id=user.id, version=1)
    exchange = await rabbit.channel.get_exchange(AUTH_EVENTS.name)
    await exchange.publish(
        aio_pika.Message(envelope.model_dump_json().encode(), content_type="application/json"),
        routing_key=UserRegistered.ROUTING_KEY,
    )


async def waiting_in(rabbit: Rabbit, queue: str) -> int:
    """How many messages wait in `queue` (not those delivered and not yet acked)."""
    return (await rabbit.queue(queue)).message_count or 0


async def consumers_of(rabbit: Rabbit, queue: str) -> int:
    return (await rabbit.queue(queue)).consumer_count or 0


async def dead_lettered(rabbit: Rabbit) -> list[bytes]:
    """The bodies in order_query's dead-letter queue, left there (each is taken, then all
    are put back, so the queue holds the same afterwards)."""
    channel = await rabbit.connection.channel()
    try:
        queue = await channel.declare_queue(ORDERS_DLQ, passive=True)
        taken = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            taken.append(message)
        for message in taken:
            await message.nack(requeue=True)
        return [message.body for message in taken]
    finally:
        await channel.close()


# --- order_query itself -------------------------------------------------------------------


@pytest.fixture(scope="session")
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    """The tests' own view of the projection's Redis database."""
    client = Redis.from_url(servers.redis)
    yield client
    await client.aclose()


async def live_keys(redis: Redis, *names: str) -> list[str]:
    """The full names of projection keys (`order_key(...)`, ...) in the live generation."""
    generation = prefix(await Projection(redis).live_generation())
    return [generation + name for name in names]


async def lose_projection(redis: Redis) -> None:
    """Redis lost its data (the tests' own database)."""
    await redis.flushdb()


async def lose_order(redis: Redis, order_id: str) -> None:
    """The projection loses one order (its state and its history), as if never projected."""
    await redis.delete(*await live_keys(redis, order_key(order_id), history_key(order_id)))


async def projected(redis: Redis, order_id: str) -> dict[str, Any] | None:
    raw = await Projection(redis).get(order_id)
    return json.loads(raw) if raw else None


async def until_projected(redis: Redis, order: dict[str, Any], timeout: float = 15) -> None:
    """Wait until the projection holds `order` (as order_command answered it) exactly."""
    await eventually(
        lambda: projected(redis, order["id"]),
        until=lambda found: found == order,
        timeout=timeout,
        what=f"order {order['id']} v{order['version']} in the projection",
    )


@dataclass
class Query:
    app: FastAPI
    http: httpx.AsyncClient
    link: Link

    async def get(self, path: str, by: Caller, **params: Any) -> httpx.Response:
        return await self.http.get(path, headers=by.headers, params=params)


StartQuery = Callable[..., contextlib.AbstractAsyncContextManager[Query]]


@pytest.fixture
def start_query(servers: Servers, command_app: FastAPI, rabbit: Rabbit) -> StartQuery:
    """Start an order_query app (its Redis at `redis_url`, by default the tests'; order_command
    reached through `link`, by default a fresh one) and wait until it consumes its queue."""

    @contextlib.asynccontextmanager
    async def start(redis_url: str | None = None, link: Link | None = None) -> AsyncIterator[Query]:
        async with contextlib.AsyncExitStack() as stack:
            if link is None:
                link = await stack.enter_async_context(link_to(command_app))
            settings = OrderQuerySettings(
                environment="test",
                rabbitmq_url=servers.rabbitmq,
                redis_url=redis_url or servers.redis,
            )
            consuming = await consumers_of(rabbit, ORDERS.name)
            app = create_query_app(settings, Reach(TEST_KEYS, link.command_side))
            await stack.enter_async_context(LifespanManager(app, shutdown_timeout=30))
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://query")
            )
            await eventually(
                lambda: consumers_of(rabbit, ORDERS.name),
                until=lambda count: count > consuming,
                timeout=20,
                what="order_query consuming its queue",
            )
            yield Query(app, http, link)

    return start


@pytest.fixture(scope="module")
async def query(servers: Servers, command_app: FastAPI, redis: Redis) -> AsyncIterator[Query]:
    """One order_query app for a whole module of read tests."""
    async with link_to(command_app) as link:
        settings = OrderQuerySettings(
            environment="test", rabbitmq_url=servers.rabbitmq, redis_url=servers.redis
        )
        app = create_query_app(settings, Reach(TEST_KEYS, link.command_side))
        async with LifespanManager(app, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://query") as http:
                await eventually(
                    lambda: http.get("/readyz"),
                    until=lambda r: r.status_code == 200,
                    timeout=20,
                    what="order_query ready",
                )
                yield Query(app, http, link)
