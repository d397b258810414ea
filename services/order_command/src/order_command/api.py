"""The order command routes: parse, call the service layer once, answer."""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from order_command.domain import Actor, Order
from order_command.idempotency import IdempotentRequest
from order_command.schemas import LegacyStatusChange, OrderDraft, StatusChange
from order_command.service import OrderService
from shared import seed004
from shared.failures import Malformed
from shared.schemas import COMMON_ERRORS, OrderOut, error_responses
from shared.security import CurrentService, CurrentUser, Principal
from shared.seed004 import LegacyOrderOut

router = APIRouter(
    tags=["orders"], responses=error_responses(*COMMON_ERRORS, 401, 403, 404, 409, 412)
)
# Service to service only: the gateway never routes /internal/, and the docs never show it.
internal = APIRouter(tags=["internal"], include_in_schema=False)


# Dependencies are `async def` although they do no I/O: FastAPI runs a plain `def` in its
# thread pool, a hand-off that costs more than the work itself.
async def _service(request: Request) -> OrderService:
    service: OrderService = request.app.state.orders
    return service


async def _actor(principal: CurrentUser) -> Actor:
    return Actor(user_id=principal.user_id, is_admin=principal.is_admin)


_VERSION_TAG = re.compile(r'(?:W/)?(?:"([0-9]{1,9})"|([0-9]{1,9}))')


def parse_if_match(value: str) -> frozenset[int] | None:
    """The versions an `If-Match` accepts (RFC 9110 13.1.1): a list of entity tags, which are
    an order's `"version"` (also taken bare or weak, as clients send them), or `*`: any
    current version, so no condition (None). Anything else is a 400."""
    tags = [tag.strip() for tag in value[:1000].split(",")]
    if tags == ["*"]:
        return None
    versions = set()
    for tag in tags:
        match = _VERSION_TAG.fullmatch(tag)
        if match is None:
            raise Malformed(
                'If-Match must be an order version as its ETag gives it, such as "3", or *'
            )
        versions.add(int(match.group(1) or match.group(2)))
    return frozenset(versions)


async def _if_match(
    if_match: Annotated[
        str | None, Header(description='The version you last saw: its ETag, "3"')
    ] = None,
) -> frozenset[int] | None:
    return None if if_match is None else parse_if_match(if_match)


async def _idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="Retries with this key replay the first answer",
        ),
    ] = None,
) -> str | None:
    return idempotency_key


Orders = Annotated[OrderService, Depends(_service)]
Caller = Annotated[Actor, Depends(_actor)]
IfMatch = Annotated[frozenset[int] | None, Depends(_if_match)]
IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]


def _shown(order: Order) -> OrderOut:
    return OrderOut.model_validate(order, from_attributes=True)


def _answer(order: Order, response: Response) -> OrderOut:
    response.headers["ETag"] = f'"{order.version}"'
    return _shown(order)


def _seed004(order: Order, principal: Principal) -> JSONResponse:
    """seed004's shape; the owner's name is known here when the owner is the caller."""
    shown = _shown(order).model_dump(mode="json")
    username = principal.username if principal.user_id == order.user_id else None
    return JSONResponse(seed004.order(shown, username), headers={"ETag": f'"{order.version}"'})


async def _create(
    draft: OrderDraft,
    actor: Actor,
    orders: OrderService,
    key: str | None,
    *,
    legacy: Principal | None = None,
) -> JSONResponse:
    request = None
    if key is not None:
        assert actor.user_id is not None
        request = IdempotentRequest(actor.user_id, key, draft.model_dump_json().encode())
    created = await orders.create(actor, draft.domain_items(), draft.total_price, request)
    order = created.order
    body = _shown(order).model_dump(mode="json")
    if legacy is not None:  # the caller made it: it is theirs, and so is the name
        body = seed004.order(body, legacy.username)
    headers = {"ETag": f'"{order.version}"', "Location": f"/orders/{order.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=status.HTTP_201_CREATED, headers=headers)


@router.post("/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
@router.post("/orders/create_new_order", status_code=201, response_model=OrderOut, tags=["seed000"])
async def create_order(
    draft: OrderDraft, actor: Caller, orders: Orders, key: IdempotencyKey
) -> JSONResponse:
    """Create an order (PENDING). The total is computed; a total you send must equal it."""
    return await _create(draft, actor, orders, key)


@router.post("/api/v1/orders/", status_code=201, response_model=LegacyOrderOut, tags=["seed004"])
async def create_order_v1(
    draft: OrderDraft, actor: Caller, orders: Orders, key: IdempotencyKey, principal: CurrentUser
) -> JSONResponse:
    return await _create(draft, actor, orders, key, legacy=principal)


@router.put("/orders/{order_id}", response_model=OrderOut)
async def replace_items(
    order_id: uuid.UUID,
    draft: OrderDraft,
    actor: Caller,
    orders: Orders,
    if_match: IfMatch,
    response: Response,
) -> OrderOut:
    """Replace the items (and so the total) while the order is PENDING."""
    order = await orders.replace_items(
        actor, order_id, draft.domain_items(), draft.total_price, if_match
    )
    return _answer(order, response)


@router.put("/api/v1/orders/{order_id}/", response_model=LegacyOrderOut, tags=["seed004"])
async def replace_items_v1(
    order_id: uuid.UUID,
    draft: OrderDraft,
    actor: Caller,
    orders: Orders,
    if_match: IfMatch,
    principal: CurrentUser,
) -> JSONResponse:
    order = await orders.replace_items(
        actor, order_id, draft.domain_items(), draft.total_price, if_match
    )
    return _seed004(order, principal)


@router.patch("/orders/{order_id}/status", response_model=OrderOut)
async def change_status(
    order_id: uuid.UUID,
    change: StatusChange,
    actor: Caller,
    orders: Orders,
    if_match: IfMatch,
    response: Response,
) -> OrderOut:
    """Move the order forward along PENDING → PAID → SHIPPED → CANCELED, or cancel it."""
    return _answer(await orders.change_status(actor, order_id, change.status, if_match), response)


@router.patch("/orders/update", response_model=OrderOut, tags=["seed000"])
async def change_status_v0(
    change: LegacyStatusChange,
    actor: Caller,
    orders: Orders,
    if_match: IfMatch,
    response: Response,
) -> OrderOut:
    order = await orders.change_status(actor, change.order_id, change.new_status, if_match)
    return _answer(order, response)


@router.delete("/orders/{order_id}", response_model=OrderOut)
async def delete_order(
    order_id: uuid.UUID, actor: Caller, orders: Orders, if_match: IfMatch, response: Response
) -> OrderOut:
    """Soft delete: the order stays on record, hidden from reads."""
    return _answer(await orders.delete(actor, order_id, if_match), response)


@router.delete("/api/v1/orders/{order_id}/", response_model=LegacyOrderOut, tags=["seed004"])
async def delete_order_v1(
    order_id: uuid.UUID, actor: Caller, orders: Orders, if_match: IfMatch, principal: CurrentUser
) -> JSONResponse:
    return _seed004(await orders.delete(actor, order_id, if_match), principal)


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_after: uuid.UUID | None


@internal.get("/internal/orders", response_model=OrderPage)
async def list_orders(
    orders: Orders,
    _: CurrentService,
    after: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> OrderPage:
    """Every order (deleted ones too) in id order, a page at a time: the query side's rebuild."""
    page = await orders.page(after, limit)
    return OrderPage(
        items=[_shown(order) for order in page],
        next_after=page[-1].id if len(page) == limit else None,
    )


@internal.get("/internal/orders/{order_id}", response_model=OrderOut)
async def read_order(
    order_id: uuid.UUID,
    orders: Orders,
    _: CurrentService,
    response: Response,
) -> OrderOut:
    """The order as the command side holds it (deleted ones too): the query side's repair."""
    return _answer(await orders.read(order_id), response)
