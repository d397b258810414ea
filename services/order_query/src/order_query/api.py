"""The order query routes: parse, call the read use case once, answer."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from order_query.queries import Filters, OrderQueries, Page
from order_query.schemas import HistoryEntry, ListParams, OrderList
from shared import seed004
from shared.failures import Invalid
from shared.schemas import COMMON_ERRORS, OrderOut, error_responses
from shared.security import CurrentUser, Principal
from shared.seed004 import LegacyOrderOut

router = APIRouter(tags=["orders"], responses=error_responses(*COMMON_ERRORS, 401, 403, 404))
JSON = "application/json"


# `async def` although it does no I/O: FastAPI runs a plain `def` dependency in its thread
# pool, a hand-off that costs more than the work itself.
async def _queries(request: Request) -> OrderQueries:
    queries: OrderQueries = request.app.state.queries
    return queries


Queries = Annotated[OrderQueries, Depends(_queries)]


async def _list_params(request: Request) -> ListParams:
    """The list's query string, validated by pydantic in one call. FastAPI reads a query
    model field by field, asking each field's type on every request whether it is a list:
    65 us a request against 20 here, a tenth of a list's whole cost (decision 52)."""
    try:
        return ListParams.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None


def _query_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI parameters FastAPI would list for `model` as a query model, for a route
    that validates its query string itself (`openapi_extra`)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    required = set(schema.get("required", ()))
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": field,
                **({"description": field["description"]} if "description" in field else {}),
            }
            for name, field in schema["properties"].items()
        ]
    }


Params = Annotated[ListParams, Depends(_list_params)]
LIST_PARAMETERS = _query_parameters(ListParams)


async def _seed004(queries: OrderQueries, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """seed004's shape, each order with its owner's name (from `user.registered`)."""
    names = await queries.projection.usernames({order["user_id"] for order in orders})
    return [seed004.order(order, names.get(order["user_id"])) for order in orders]


def _filters(params: ListParams) -> Filters:
    return Filters(
        status=params.status,
        created_from=params.created_from,
        created_to=params.created_to,
        min_total=params.min_total,
        max_total=params.max_total,
    )


async def _page(
    queries: OrderQueries, principal: Principal, params: ListParams, user_id: str | None
) -> Page:
    return await queries.orders(
        principal,
        user_id=user_id,
        filters=_filters(params),
        limit=params.limit,
        cursor=params.cursor,
    )


def _list_response(page: Page) -> Response:
    """The stored orders joined as they are: no parsing, no re-serialising."""
    body = b'{"items":[%s],"next_cursor":%s}' % (page.items, json.dumps(page.next_cursor).encode())
    return Response(body, media_type=JSON)


@router.get("/orders", response_model=OrderList, openapi_extra=LIST_PARAMETERS)
async def list_orders(principal: CurrentUser, queries: Queries, params: Params) -> Response:
    """Your orders, newest first; an admin sees everybody's, or one user's with `user_id`."""
    user_id = str(params.user_id) if params.user_id else None
    return _list_response(await _page(queries, principal, params, user_id))


@router.get("/orders/user/{user_id}", response_model=OrderList, openapi_extra=LIST_PARAMETERS)
async def list_user_orders(
    user_id: uuid.UUID, principal: CurrentUser, queries: Queries, params: Params
) -> Response:
    """One user's orders: that user or an admin only."""
    if params.user_id is not None and params.user_id != user_id:
        raise Invalid("The query's user_id is not the path's", details={"user_id": str(user_id)})
    return _list_response(await _page(queries, principal, params, str(user_id)))


@router.get("/orders/{order_id}", response_model=OrderOut)
async def get_order(order_id: uuid.UUID, principal: CurrentUser, queries: Queries) -> Response:
    """The order as of its latest event; a miss is repaired from the command side."""
    return Response(await queries.order(principal, str(order_id)), media_type=JSON)


@router.get("/orders/{order_id}/history", response_model=list[HistoryEntry])
async def order_history(order_id: uuid.UUID, principal: CurrentUser, queries: Queries) -> Any:
    """Who did what to the order, and when, in version order. A version whose event has not
    reached this service yet shows as an `order.snapshot` of the order at that version."""
    return await queries.history(principal, str(order_id))


@router.get(
    "/api/v1/orders/",
    response_model=list[LegacyOrderOut],
    tags=["seed004"],
    openapi_extra=LIST_PARAMETERS,
)
async def list_orders_v1(
    principal: CurrentUser, queries: Queries, params: Params, request: Request
) -> Any:
    """seed004's list: a bare JSON list of your orders (an admin's: everybody's), newest first.
    A next page, if any, is in the `Link` header (`rel="next"`), as `next_cursor` is elsewhere."""
    user_id = str(params.user_id) if params.user_id else None
    page = await _page(queries, principal, params, user_id)
    orders = await _seed004(queries, json.loads(b"[%s]" % page.items))
    headers = {}
    if page.next_cursor is not None:
        following = request.url.include_query_params(cursor=page.next_cursor)
        headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
    return JSONResponse(orders, headers=headers)


@router.get("/api/v1/orders/{order_id}/", response_model=LegacyOrderOut, tags=["seed004"])
async def get_order_v1(order_id: uuid.UUID, principal: CurrentUser, queries: Queries) -> Any:
    order = json.loads(await queries.order(principal, str(order_id)))
    return JSONResponse((await _seed004(queries, [order]))[0])
