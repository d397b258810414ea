"""order_command's service layer through the unit of work in memory: every rule it owns (who
may change an order, conditional changes, idempotent creates, timers, all or nothing)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from order_command.domain import SYSTEM, Actor, InvalidOrder, TransitionRefused
from order_command.idempotency import IdempotentRequest, KeyReused
from order_command.service import OrderService
from shared.events import OrderCreated, OrderDeleted, OrderItem, OrderStatus, OrderStatusChanged
from shared.failures import Invalid, NotFound, Refused, Stale
from tests.support.fake_orders import MemoryUnitOfWork, memory_service

PENDING, PAID, SHIPPED, CANCELED = (
    OrderStatus.PENDING,
    OrderStatus.PAID,
    OrderStatus.SHIPPED,
    OrderStatus.CANCELED,
)
ALICE = Actor(uuid.uuid4())
BOB = Actor(uuid.uuid4())
ADMIN = Actor(uuid.uuid4(), is_admin=True)
ITEMS = [OrderItem(name="tea", price=Decimal("2.50"), quantity=2)]


@pytest.fixture
def service() -> tuple[OrderService, MemoryUnitOfWork]:
    return memory_service(currency="EUR")


@pytest.fixture
def orders(service: tuple[OrderService, MemoryUnitOfWork]) -> OrderService:
    return service[0]


@pytest.fixture
def work(service: tuple[OrderService, MemoryUnitOfWork]) -> MemoryUnitOfWork:
    return service[1]


def key(actor: Actor, body: bytes = b"{}", name: str = "k-1") -> IdempotentRequest:
    assert actor.user_id is not None
    return IdempotentRequest(actor.user_id, name, body)


async def test_a_create_writes_the_order_and_its_created_event(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    created = await orders.create(ALICE, ITEMS, None)
    order = created.order
    assert not created.replayed
    assert (order.status, order.version, order.total_price) == (PENDING, 1, Decimal("5.00"))
    assert order.currency == "EUR"  # the service's, not the client's
    assert work.stored.orders[order.id] == order
    [(version, event)] = work.events_of(order.id)
    assert version == 1 and isinstance(event, OrderCreated) and event.user_id == ALICE.user_id


async def test_a_refused_create_writes_nothing_and_does_not_use_up_its_key(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    with pytest.raises(InvalidOrder):
        await orders.create(ALICE, ITEMS, Decimal("1.00"), key(ALICE))
    assert work.stored.orders == {} and work.stored.keys == {}
    created = await orders.create(ALICE, ITEMS, None, key(ALICE))
    assert not created.replayed


async def test_a_repeated_key_and_body_replay_the_order_as_it_was_created(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    first = await orders.create(ALICE, ITEMS, None, key(ALICE))
    await orders.change_status(ALICE, first.order.id, PAID, None)
    again = await orders.create(ALICE, ITEMS, None, key(ALICE))
    assert again.replayed
    assert again.order == first.order  # version 1, PENDING: the first answer, not today's state
    assert len(work.stored.orders) == 1
    assert [type(e) for _, e in work.events_of(first.order.id)] == [
        OrderCreated,
        OrderStatusChanged,
    ]


async def test_a_key_used_again_with_another_body_is_refused_and_writes_nothing(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    await orders.create(ALICE, ITEMS, None, key(ALICE, b"first"))
    with pytest.raises(KeyReused) as refused:
        await orders.create(ALICE, ITEMS, None, key(ALICE, b"second"))
    assert isinstance(refused.value, Invalid)
    assert refused.value.details == {"idempotency_key": "k-1"}
    assert len(work.stored.orders) == 1


async def test_keys_are_per_user(orders: OrderService, work: MemoryUnitOfWork) -> None:
    mine = await orders.create(ALICE, ITEMS, None, key(ALICE))
    his = await orders.create(BOB, ITEMS, None, key(BOB))
    assert not his.replayed and his.order.id != mine.order.id


async def test_another_users_order_does_not_exist_for_you_but_does_for_an_admin(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    order = (await orders.create(ALICE, ITEMS, None)).order
    for change in (
        orders.change_status(BOB, order.id, PAID, None),
        orders.replace_items(BOB, order.id, ITEMS, None, None),
        orders.delete(BOB, order.id, None),
    ):
        with pytest.raises(NotFound):
            await change
    assert work.stored.orders[order.id].version == 1
    paid = await orders.change_status(ADMIN, order.id, PAID, None)
    assert paid.status is PAID


async def test_a_deleted_order_can_no_longer_be_changed_but_is_still_read_internally(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    order = (await orders.create(ALICE, ITEMS, None)).order
    deleted = await orders.delete(ALICE, order.id, None)
    assert deleted.is_deleted and isinstance(work.events_of(order.id)[-1][1], OrderDeleted)
    with pytest.raises(NotFound):
        await orders.change_status(ALICE, order.id, PAID, None)
    assert (await orders.read(order.id)).is_deleted


async def test_a_change_conditional_on_an_old_version_is_stale_and_writes_nothing(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    order = (await orders.create(ALICE, ITEMS, None)).order
    await orders.change_status(ALICE, order.id, PAID, frozenset({1}))
    with pytest.raises(Stale) as stale:
        await orders.change_status(ALICE, order.id, SHIPPED, frozenset({1}))
    assert stale.value.details == {"version": 2, "status": "PAID"}
    assert work.stored.orders[order.id].version == 2
    shipped = await orders.change_status(ALICE, order.id, SHIPPED, frozenset({1, 2}))
    assert (shipped.status, shipped.version) == (SHIPPED, 3)


async def test_a_refused_transition_leaves_the_order_as_it_was(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    order = (await orders.create(ALICE, ITEMS, None)).order
    await orders.change_status(ALICE, order.id, CANCELED, None)
    commits = work.commits
    with pytest.raises(TransitionRefused) as refused:
        await orders.change_status(ALICE, order.id, PAID, None)
    assert isinstance(refused.value, Refused)
    assert work.commits == commits
    assert work.stored.orders[order.id].status is CANCELED
    with pytest.raises(TransitionRefused):
        await orders.replace_items(ALICE, order.id, ITEMS, None, None)


async def test_each_change_is_the_next_version_with_its_time(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    order = (await orders.create(ALICE, ITEMS, None)).order
    more = [OrderItem(name="cake", price=Decimal("3.99"), quantity=1)]
    updated = await orders.replace_items(ALICE, order.id, more, Decimal("3.99"), None)
    assert (updated.version, updated.total_price) == (2, Decimal("3.99"))
    assert updated.updated_at > order.updated_at
    assert [v for v, _ in work.events_of(order.id)] == [1, 2]


async def test_a_timer_advances_only_an_order_still_where_it_expected_it(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    order = (await orders.create(ALICE, ITEMS, None)).order
    paid = await orders.advance(order.id, PENDING)
    assert paid is not None and paid.status is PAID
    [*_, (_, event)] = work.events_of(order.id)
    assert isinstance(event, OrderStatusChanged) and event.changed_by is SYSTEM.user_id
    assert await orders.advance(order.id, PENDING) is None  # stale: redelivered or overtaken
    assert work.stored.orders[order.id].version == 2
    assert await orders.advance(uuid.uuid4(), PENDING) is None  # no such order


async def test_a_timer_never_moves_a_deleted_or_canceled_order(
    orders: OrderService, work: MemoryUnitOfWork
) -> None:
    gone = (await orders.create(ALICE, ITEMS, None)).order
    await orders.delete(ALICE, gone.id, None)
    assert await orders.advance(gone.id, PENDING) is None
    final = (await orders.create(ALICE, ITEMS, None)).order
    await orders.change_status(ALICE, final.id, CANCELED, None)
    assert await orders.advance(final.id, CANCELED) is None


async def test_read_and_page(orders: OrderService) -> None:
    with pytest.raises(NotFound):
        await orders.read(uuid.uuid4())
    made = sorted([(await orders.create(ALICE, ITEMS, None)).order.id for _ in range(5)])
    first = await orders.page(None, 3)
    rest = await orders.page(first[-1].id, 3)
    assert [o.id for o in first + rest] == made
