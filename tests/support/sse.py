"""Reading a server-sent event stream as a client does (the WHATWG event-stream format)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    type: str
    id: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class EventStream:
    """The events of one open response, read on demand with a deadline."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()
        self.last_id: str | None = None

    async def next(self, timeout: float = 10.0) -> Event:
        kind, event_id, data = "message", None, list[str]()
        async with asyncio.timeout(timeout):
            async for line in self._lines:
                if line == "":
                    if data or event_id is not None:
                        if event_id is not None:
                            self.last_id = event_id
                        return Event(kind, event_id, "\n".join(data))
                    continue
                if line.startswith(":"):
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    kind = value
                elif field == "id":
                    event_id = value
                elif field == "data":
                    data.append(value)
        raise EOFError("the stream ended")

    async def until(
        self, wanted: Callable[[Event], bool], *, timeout: float = 10.0, what: str = "an event"
    ) -> list[Event]:
        """Every event up to and including the first `wanted` one."""
        seen: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what} did not come within {timeout} s; saw {seen}")
            try:
                event = await self.next(left)
            except TimeoutError:
                continue
            seen.append(event)
            if wanted(event):
                return seen


@contextlib.asynccontextmanager
async def open_stream(
    http: httpx.AsyncClient, path: str = "/orders/stream", *, last_event_id: str | None = None
) -> AsyncIterator[EventStream]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with http.stream("GET", path, headers=headers, timeout=httpx.Timeout(10, read=60)) as r:
        assert r.status_code == 200, (await r.aread()).decode()
        assert r.headers["content-type"].startswith("text/event-stream"), r.headers
        yield EventStream(r)
