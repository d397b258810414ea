"""Test data with names nobody else uses, so tests share one database without clashing."""

from __future__ import annotations

import uuid
from typing import Any


def user_body(**overrides: Any) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:12]
    body = {"username": f"user_{tag}", "email": f"{tag}@example.com", "password": f"pw-{tag}-9"}
    return {**body, **overrides}
