"""The order query routes: parse, call the read use case once, answer."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from order_query.queries import Filters, OrderQueries
from order_query.schemas import HistoryEntry, ListParams, OrderList, OrderOut
from shared.security import CurrentPrincipal, Principal

router = APIRouter(tags=["orders"])
JSON = "application/json"


def _queries(request: Request) -> OrderQueries:
    queries: OrderQueries = request.app.state.queries
    return queries


Queries = Annotated[OrderQueries, Depends(_queries)]
Params = Annotated[ListParams, Query()]


def _legacy(order: dict[str, Any]) -> dict[str, Any]:
    """seed004's clients read `order_id` and `products`."""
    return {**order, "order_id": order["id"], "products": order["items"]}


async def _list(
    queries: OrderQueries, principal: Principal, params: ListParams, user_id: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    filters = Filters(
        status=params.status,
        created_from=params.created_from,
        created_to=params.created_to,
        min_total=params.min_total,
        max_total=params.max_total,
    )
    return await queries.orders(
        principal, user_id=user_id, filters=filters, limit=params.limit, cursor=params.cursor
    )


@router.get("/orders", response_model=OrderList)
async def list_orders(principal: CurrentPrincipal, queries: Queries, params: Params) -> Any:
    """Your orders, newest first; an admin sees everybody's, or one user's with `user_id`."""
    user_id = str(params.user_id) if params.user_id else None
    items, cursor = await _list(queries, principal, params, user_id)
    return {"items": items, "next_cursor": cursor}


@router.get("/orders/user/{user_id}", response_model=OrderList)
async def list_user_orders(
    user_id: uuid.UUID, principal: CurrentPrincipal, queries: Queries, params: Params
) -> Any:
    """One user's orders: that user or an admin only."""
    items, cursor = await _list(queries, principal, params, str(user_id))
    return {"items": items, "next_cursor": cursor}


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: uuid.UUID, principal: CurrentPrincipal, queries: Queries) -> Response:
    """The order as of its latest event; a miss is repaired from the command side."""
    return Response(await queries.order(principal, str(order_id)), media_type=JSON)


@router.get("/orders/{order_id}/history", response_model=list[HistoryEntry])
async def order_history(order_id: uuid.UUID, principal: CurrentPrincipal, queries: Queries) -> Any:
    """Who did what to the order, and when, in version order."""
    return await queries.history(principal, str(order_id))


@router.get("/api/v1/orders/", tags=["seed004"])
async def list_orders_v1(principal: CurrentPrincipal, queries: Queries, params: Params) -> Any:
    user_id = str(params.user_id) if params.user_id else None
    items, cursor = await _list(queries, principal, params, user_id)
    return {"items": [_legacy(o) for o in items], "next_cursor": cursor}


@router.get("/api/v1/orders/{order_id}/", tags=["seed004"])
async def get_order_v1(order_id: uuid.UUID, principal: CurrentPrincipal, queries: Queries) -> Any:
    return _legacy(json.loads(await queries.order(principal, str(order_id))))
