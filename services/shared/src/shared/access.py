"""Who may see or touch an order, written once for every service: its owner, or an admin.
(order_command's domain adds the platform's own timer; order_query's reads and stream ask
this for each order they show.)"""

from __future__ import annotations

import uuid


def owner_or_admin(user_id: uuid.UUID | None, *, is_admin: bool, owner: uuid.UUID | str) -> bool:
    """`owner` as the command side holds it (a UUID) or as the projection does (its text)."""
    return is_admin or (user_id is not None and str(user_id) == str(owner))
