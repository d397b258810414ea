"""seed004's shapes (the Django API's clients): an order as it answered one, beside the
platform's own fields. Both order sides answer seed004's paths with it (docs/orders.md,
README "Clients of the source systems").

- `order_id`: the order's `id`;
- `user`: the owner's username (null where the answering side does not know it);
- `products`: the items, each with a `product_id`, which seed004 stored per line and this
  platform does not: a UUID derived from the order's id and the line's place, so the same
  line has the same id in every answer.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from shared.events import OrderItem
from shared.schemas import OrderOut


class Product(OrderItem):
    """An item as seed004 showed it (its `products`)."""

    product_id: uuid.UUID


class LegacyOrderOut(OrderOut):
    """seed004's clients read `order_id`, `user` and `products`."""

    order_id: uuid.UUID
    user: str | None = Field(description="The owner's username; null where not known")
    products: tuple[Product, ...]


def product_id(order_id: str, line: int) -> str:
    return str(uuid.uuid5(uuid.UUID(order_id), f"product-{line}"))


def order(shown: dict[str, Any], username: str | None) -> dict[str, Any]:
    """`shown` is the order as the API answers it (DESIGN.md's shape)."""
    products = [
        {"product_id": product_id(shown["id"], line), **item}
        for line, item in enumerate(shown["items"])
    ]
    return {**shown, "order_id": shown["id"], "user": username, "products": products}
