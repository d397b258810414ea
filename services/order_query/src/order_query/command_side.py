"""order_command's /internal/ reads, which the projection repairs itself from."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx

from shared.errors import AppError, DependencyUnavailable

# What order_command answers when it is there but cannot serve (its database is down, say):
# wait and try again. Any other unexpected answer is a fault of ours (a service token it
# refuses, a path it does not know): retrying will not mend it.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class TokenSource(Protocol):
    """Where the service token comes from (`shared.service_tokens.ServiceTokens`)."""

    async def headers(self) -> dict[str, str]: ...


class CommandSideRefused(AppError):
    """order_command answered, but not as it should: a consumer does not wait this out (the
    message goes to the dead-letter queue after its deliveries), a read answers 502."""

    status_code = 502
    code = "bad_gateway"


class CommandSide:
    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        tokens: TokenSource,
        *,
        timeout: float = 1.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.tokens = tokens
        self.timeout = timeout

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
        """One call, the service token included, within `timeout` seconds."""
        try:
            async with asyncio.timeout(self.timeout):
                headers = await self.tokens.headers()
                response = await self.http.get(f"{self.base_url}{path}", headers=headers, **kwargs)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise DependencyUnavailable("order_command does not answer") from exc
        if response.status_code in UNAVAILABLE_STATUSES:
            raise DependencyUnavailable(f"order_command answered {response.status_code}")
        if response.status_code not in (200, 404):
            raise CommandSideRefused(f"order_command answered {response.status_code} to {path}")
        return response
