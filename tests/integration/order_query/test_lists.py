"""Lists: the filters, cursor pagination that neither repeats nor skips an order while
orders come and go, and a clear 4xx for every bad filter, cursor and limit."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from order_query.projection import Projection, order_key
from shared.schemas import OrderOut
from tests.integration.order_query.conftest import Query, create, live_keys, until_projected
from tests.support.tokens import Caller

LIST_PATHS = ["/orders", "/orders/user/{id}", "/api/v1/orders/"]


async def change(
    command: httpx.AsyncClient, by: Caller, order: dict[str, Any], status: str
) -> dict[str, Any]:
    response = await command.patch(
        f"/orders/{order['id']}/status", json={"status": status}, headers=by.headers
    )
    assert response.status_code == 200, response.text
    changed: dict[str, Any] = response.json()
    return changed


async def ids(query: Query, by: Caller, path: str = "/orders", **params: Any) -> list[str]:
    response = await query.get(path, by, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    orders = body if path.startswith("/api/v1/") else body["items"]  # seed004's: a bare list
    return [order["id"] for order in orders]


async def every_page(query: Query, by: Caller, **params: Any) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        response = await query.get(
            "/orders", by, **params, **({"cursor": cursor} if cursor else {})
        )
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([order["id"] for order in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


async def test_the_filters_narrow_the_list(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller
) -> None:
    one, five, ten, twenty = [
        await create(command, alice, price) for price in ("1.00", "5.00", "10.00", "20.00")
    ]
    five = await change(command, alice, five, "PAID")
    ten = await change(command, alice, ten, "CANCELED")
    for order in (one, five, ten, twenty):
        await until_projected(redis, order)

    assert await ids(query, alice, status="PAID") == [five["id"]]
    assert await ids(query, alice, status="cancelled") == [ten["id"]]  # seed004's spelling
    assert await ids(query, alice, status="pending") == [twenty["id"], one["id"]]
    assert await ids(query, alice, status="SHIPPED") == []
    assert await ids(query, alice, min_total="5", max_total="10.00") == [ten["id"], five["id"]]
    assert await ids(query, alice, min_total="10.01") == [twenty["id"]]
    assert await ids(query, alice, max_total="1") == [one["id"]]
    # The creation range is inclusive at both ends.
    between = {"created_from": five["created_at"], "created_to": ten["created_at"]}
    assert await ids(query, alice, **between) == [ten["id"], five["id"]]
    assert await ids(query, alice, status="PENDING", min_total="2") == [twenty["id"]]
    assert await ids(query, alice, status="PAID", min_total="6") == []
    # A time without a zone is UTC.
    naive = datetime.fromisoformat(ten["created_at"]).astimezone(UTC).replace(tzinfo=None)
    assert await ids(query, alice, created_from=naive.isoformat()) == [twenty["id"], ten["id"]]
    assert await ids(query, alice, "/api/v1/orders/", status="PAID") == [five["id"]]
    assert await ids(query, alice, f"/orders/user/{alice.id}", max_total="1") == [one["id"]]


async def put_orders(redis: Redis, owner: str, created: list[datetime]) -> list[dict[str, Any]]:
    """Orders of `owner` created at those times, put straight into the projection (the
    command side stamps its own times, and these must be the test's)."""
    orders: list[dict[str, Any]] = [
        {
            "id": str(uuid.uuid4()),
            "user_id": owner,
            "items": [{"name": "tea", "price": "1.00", "quantity": 1}],
            "total_price": "1.00",
            "currency": "USD",
            "status": "PENDING",
            "version": 1,
            "is_deleted": False,
            "created_at": at.isoformat(),
            "updated_at": at.isoformat(),
        }
        for at in created
    ]
    projection = Projection(redis)
    for order in orders:
        assert await projection.put(OrderOut.model_validate(order))
    return orders


async def test_pages_follow_each_other_without_repeating_or_skipping(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller
) -> None:
    made = [await create(command, alice) for _ in range(11)]
    for order in made:
        await until_projected(redis, order)

    pages = await every_page(query, alice, limit=4)

    assert [len(page) for page in pages] == [4, 4, 3]
    assert [i for page in pages for i in page] == [o["id"] for o in reversed(made)]


async def test_a_full_last_page_says_there_is_no_next_one(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller
) -> None:
    made = [await create(command, alice) for _ in range(4)]
    for order in made:
        await until_projected(redis, order)
    assert [len(page) for page in await every_page(query, alice, limit=2)] == [2, 2]
    assert [len(page) for page in await every_page(query, alice, limit=4)] == [4]


async def test_paging_while_orders_are_created_and_deleted_repeats_and_skips_nothing(
    query: Query, command: httpx.AsyncClient, redis: Redis, alice: Caller
) -> None:
    made = [await create(command, alice) for _ in range(12)]
    for order in made:
        await until_projected(redis, order)
    expected = [o["id"] for o in reversed(made)]

    seen: list[str] = []
    cursor: str | None = None
    page_number = 0
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        body = (await query.get("/orders", alice, **params)).json()
        seen += [order["id"] for order in body["items"]]
        cursor, page_number = body["next_cursor"], page_number + 1
        if cursor is None:
            break
        # Between pages: new orders, and one already served deleted (an offset would shift).
        fresh = await create(command, alice)
        await until_projected(redis, fresh)
        served = seen[-1]
        gone = (await command.delete(f"/orders/{served}", headers=alice.headers)).json()
        await until_projected(redis, gone)

    assert page_number == 3
    assert seen == expected


async def test_orders_created_at_the_same_instant_are_each_served_once(
    query: Query, redis: Redis, admin: Caller
) -> None:
    owner = str(uuid.uuid4())
    instant = datetime.now(UTC) - timedelta(days=400)
    orders = await put_orders(redis, owner, [instant] * 7)

    pages = await every_page(query, admin, user_id=owner, limit=2)

    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [i for page in pages for i in page] == sorted(
        (str(o["id"]) for o in orders), reverse=True
    )


@pytest.mark.parametrize("filters", [{}, {"min_total": "0"}], ids=["index only", "on total"])
async def test_an_index_entry_whose_order_is_gone_is_passed_over(
    query: Query, redis: Redis, admin: Caller, filters: dict[str, str]
) -> None:
    """Never so while an order and its indexes are written together; a page must still go
    on past it, not stop or fail."""
    owner = str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(days=300)
    orders = await put_orders(redis, owner, [start + timedelta(seconds=n) for n in range(5)])
    lost = orders[3]["id"]
    await redis.delete(*await live_keys(redis, order_key(lost)))

    pages = await every_page(query, admin, user_id=owner, limit=2, **filters)

    served = [i for page in pages for i in page]
    assert served == [o["id"] for o in reversed(orders) if o["id"] != lost]


async def test_a_status_filter_reads_its_own_index_not_every_order(
    query: Query, redis: Redis, admin: Caller
) -> None:
    """Three PENDING orders under 5,100 newer SHIPPED ones: one page finds all three."""
    owner = str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(days=300)
    projection = Projection(redis)

    def order(seconds: int, status: str) -> dict[str, Any]:
        at = (start + timedelta(seconds=seconds)).isoformat()
        return {
            "id": str(uuid.uuid4()),
            "user_id": owner,
            "items": [{"name": "tea", "price": "1.00", "quantity": 1}],
            "total_price": "1.00",
            "currency": "USD",
            "status": status,
            "version": 1,
            "is_deleted": False,
            "created_at": at,
            "updated_at": at,
        }

    pending = [order(i, "PENDING") for i in range(3)]
    made = pending + [order(10 + i, "SHIPPED") for i in range(5_100)]
    for batch in range(0, len(made), 100):
        batched = made[batch : batch + 100]
        await asyncio.gather(*(projection.put(OrderOut.model_validate(o)) for o in batched))

    response = await query.get("/orders", admin, user_id=owner, status="PENDING", limit=10)

    shown = [OrderOut.model_validate(o).model_dump(mode="json") for o in pending[::-1]]
    assert response.json() == {"items": shown, "next_cursor": None}


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"status": "LOST"}, 422),
        ({"limit": "0"}, 422),
        ({"limit": "501"}, 422),
        ({"limit": "ten"}, 422),
        ({"min_total": "-1"}, 422),
        ({"min_total": "abc"}, 422),
        ({"min_total": "NaN"}, 422),
        ({"max_total": "Infinity"}, 422),
        ({"min_total": "10", "max_total": "5"}, 422),
        ({"created_from": "last tuesday"}, 422),
        ({"created_from": "2026-02-01T00:00:00Z", "created_to": "2026-01-01T00:00:00Z"}, 422),
        ({"user_id": "nobody"}, 422),
        ({"page": "2"}, 422),
        ({"cursor": "x" * 513}, 422),
        ({"cursor": "!!!"}, 400),
        ({"cursor": _cursor('[NaN, "00000000-0000-0000-0000-000000000000"]')}, 400),
        ({"cursor": _cursor('[1e999, "00000000-0000-0000-0000-000000000000"]')}, 400),
        ({"cursor": _cursor('[1.5, "not-an-id"]')}, 400),
        ({"cursor": _cursor('{"score": 1}')}, 400),
        ({"cursor": _cursor("[1, 2, 3]")}, 400),
        ({"cursor": _cursor("12")}, 400),
    ],
)
async def test_a_bad_filter_cursor_or_limit_is_a_clear_4xx(
    query: Query, alice: Caller, path: str, params: dict[str, str], status: int
) -> None:
    response = await query.get(path.format(id=alice.id), alice, **params)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] in {"validation_error", "bad_cursor"}
    assert error["message"]


async def test_lists_and_the_projection_work_after_redis_forgets_its_scripts(
    query: Query, redis: Redis, admin: Caller
) -> None:
    """A Redis restart empties its script cache: the scripts are loaded again, not failed."""
    owner = str(uuid.uuid4())
    await redis.script_flush()
    made = await put_orders(redis, owner, [datetime.now(UTC) - timedelta(days=200)])
    await redis.script_flush()

    assert await ids(query, admin, user_id=owner) == [made[0]["id"]]
