"""order_command's /internal/ reads, which the projection repairs itself from."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from shared.errors import DependencyUnavailable
from shared.service_tokens import ServiceTokens


class CommandSide:
    def __init__(self, base_url: str, http: httpx.AsyncClient, tokens: ServiceTokens) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.tokens = tokens

    async def order(self, order_id: str) -> dict[str, Any] | None:
        """The order as the command side holds it (deleted ones too); None if there is none."""
        response = await self._get(f"/internal/orders/{order_id}")
        if response.status_code == 404:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def every_order(self, page_size: int = 500) -> AsyncIterator[list[dict[str, Any]]]:
        """Every order, a page at a time, in id order."""
        after: uuid.UUID | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if after is not None:
                params["after"] = str(after)
            body = (await self._get("/internal/orders", params=params)).json()
            if body["items"]:
                yield body["items"]
            if body["next_after"] is None:
                return
            after = uuid.UUID(body["next_after"])

    async def _get(self, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.get(
                f"{self.base_url}{path}",
                headers=await self.tokens.headers(),
                timeout=2.0,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable("order_command does not answer") from exc
        if response.status_code not in (200, 404):
            raise DependencyUnavailable(f"order_command answered {response.status_code}")
        return response
