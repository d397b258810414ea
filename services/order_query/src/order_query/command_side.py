"""The other services' /internal/ reads: order_command's orders, which the projection repairs
itself from, and each writer's event log, which a rebuild replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel

from shared.failures import DependencyUnavailable, UpstreamRefused
from shared.schemas import OrderOut

# What order_command answers when it is there but cannot serve (its database is down, say):
# wait and try again. Any other unexpected answer is a fault of ours (a service token it
# refuses, a path it does not know): retrying will not mend it.
UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class TokenSource(Protocol):
    """Where the service token comes from (`shared.service_tokens.ServiceTokens`)."""

    async def headers(self) -> dict[str, str]: ...


class CommandSideRefused(UpstreamRefused):
    """The service answered, but not as it should: a consumer does not wait this out (the
    message goes to the dead-letter queue after its deliveries), a read answers 502."""


E = TypeVar("E")


class EventPage(BaseModel, Generic[E]):
    """A page of a service's event log (its /internal/events answer), its events read as E."""

    events: list[E]
    next: int  # ask `after` this next time
    head: int  # the log's last position when the page was read


class InternalApi:
    """Another service's /internal/ routes, called with this service's token."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        tokens: TokenSource,
        *,
        timeout: float = 1.5,
        name: str = "order_command",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.tokens = tokens
        self.timeout = timeout
        self.name = name

    async def event_pages(
        self,
        page_type: type[EventPage[E]],
        after: int = 0,
        limit: int = 2000,
        *,
        wait_out: float = 60.0,
    ) -> AsyncIterator[EventPage[E]]:
        """The service's event log from `after` on, a page at a time, until a page reaches
        the end of the log as it is then. A page the service cannot serve now (it answers
        503, or not at all) is asked for again, for up to `wait_out` seconds: a long replay
        outlives a short outage."""
        page = await self._page(page_type, after, limit, wait_out)
        while True:
            # The next page is asked for while the caller works on this one.
            following = (
                asyncio.create_task(self._page(page_type, page.next, limit, wait_out))
                if len(page.events) == limit
                else None
            )
            await asyncio.sleep(0)  # the request goes out before the caller's work starts
            try:
                yield page
            except BaseException:
                if following is not None:
                    following.cancel()
                raise
            if following is None:
                return
            page = await following

    async def _page(
        self, page_type: type[EventPage[E]], after: int, limit: int, wait_out: float
    ) -> EventPage[E]:
        response = await self._get_patiently(
            "/internal/events", {"after": after, "limit": limit}, wait_out
        )
        return page_type.model_validate_json(response.content)

    async def _get_patiently(
        self, path: str, params: dict[str, Any], wait_out: float
    ) -> httpx.Response:
        deadline = asyncio.get_running_loop().time() + wait_out
        pause = 0.1
        while True:
            try:
                return await self._get(path, params=params)
            except DependencyUnavailable:
                if asyncio.get_running_loop().time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def _get(self, path: str, **kwargs: Any) -> httpx.Response:
        """One call, the service token included, within `timeout` seconds."""
        try:
            async with asyncio.timeout(self.timeout):
                headers = await self.tokens.headers()
                response = await self.http.get(f"{self.base_url}{path}", headers=headers, **kwargs)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise DependencyUnavailable(f"{self.name} does not answer") from exc
        if response.status_code in UNAVAILABLE_STATUSES:
            raise DependencyUnavailable(f"{self.name} answered {response.status_code}")
        if response.status_code not in (200, 404):
            raise CommandSideRefused(f"{self.name} answered {response.status_code} to {path}")
        return response


class CommandSide(InternalApi):
    async def order(self, order_id: str) -> OrderOut | None:
        """The order as the command side holds it (deleted ones too); None if there is none."""
        response = await self._get(f"/internal/orders/{order_id}")
        if response.status_code == 404:
            return None
        return OrderOut.model_validate_json(response.content)
