"""The workload: several users, each at a steady pace, doing what clients do through the
gateway: creates with an Idempotency-Key (retried with the same key on a 5xx or a broken
connection, as a correct client does), manual status changes, item changes, deletes, reads.
What the platform acknowledged is recorded, to be checked against what it kept."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRY_FOR = 30.0  # seconds a client keeps retrying a create with its key


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer came
    kind: str  # create, status, items, delete, read, list
    status: int  # 0: no answer (the connection broke or timed out)

    @property
    def failed(self) -> bool:
        """A server's failure, as a client sees it: a 5xx, or no answer at all."""
        return self.status == 0 or self.status >= 500


@dataclass(frozen=True)
class Change:
    """A change the platform acknowledged: the order's version after it, and what it was."""

    order_id: str
    version: int
    type: str  # the event it must have logged
    at: float  # when it was acknowledged (monotonic)
    to_status: str | None = None


@dataclass
class Record:
    answers: list[Answer] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    keys_tried: set[str] = field(default_factory=set)
    changes: list[Change] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)

    def versions_by(self, moment: float) -> dict[str, int]:
        """Each order's last version acknowledged at or before `moment`."""
        versions: dict[str, int] = {}
        for change in self.changes:
            if change.at <= moment and change.version > versions.get(change.order_id, 0):
                versions[change.order_id] = change.version
        return versions

    def created_at(self) -> list[float]:
        return sorted(a.at for a in self.answers if a.kind == "create" and a.status == 201)

    def failed_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.answers if a.failed and start <= a.at <= end)

    def errors_between(self, start: float, end: float) -> int:
        """Answers of 500 (a 503 says a dependency is away, which a client can act on)."""
        return sum(1 for a in self.answers if a.status == 500 and start <= a.at <= end)

    def longest_without_a_create(self, start: float, end: float) -> float:
        """The longest stretch inside [start, end] with no successful create."""
        times = [start, *(t for t in self.created_at() if start <= t <= end), end]
        return max(b - a for a, b in itertools.pairwise(times))


ITEMS = [
    {"name": "tea", "price": "2.50", "quantity": 2},
    {"name": "cake", "price": "3.99", "quantity": 1},
]


class User:
    def __init__(self, http: httpx.AsyncClient, record: Record, rng: random.Random) -> None:
        self.http = http
        self.record = record
        self.rng = rng
        self.mine: list[str] = []

    async def _call(
        self, kind: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TransportError:
            self.record.answers.append(Answer(time.monotonic(), kind, 0))
            return None
        self.record.answers.append(Answer(time.monotonic(), kind, response.status_code))
        return response

    async def create(self) -> None:
        key = uuid.uuid4().hex
        self.record.keys_tried.add(key)
        body = {"items": [{**ITEMS[0], "name": f"chaos {key}"}, ITEMS[1]]}
        give_up = time.monotonic() + RETRY_FOR
        while time.monotonic() < give_up:
            response = await self._call(
                "create", "POST", "/orders", json=body, headers={"Idempotency-Key": key}
            )
            if response is not None and response.status_code == 201:
                order = response.json()
                self.record.created[key] = order["id"]
                self.record.changes.append(
                    Change(order["id"], 1, "order.created", time.monotonic())
                )
                self.mine.append(order["id"])
                return
            if response is not None and response.status_code < 500:
                return  # refused for a reason: nothing to retry
            await asyncio.sleep(0.2)  # a client's pause before it tries again

    def _acknowledged(self, response: httpx.Response | None, kind: str, **what: Any) -> None:
        if response is None or response.status_code != 200:
            return
        order = response.json()
        self.record.changes.append(
            Change(order["id"], order["version"], kind, time.monotonic(), **what)
        )

    async def change(self) -> None:
        """One change to one of this user's orders, or a read."""
        if not self.mine:
            return
        order_id = self.rng.choice(self.mine[-20:])
        roll = self.rng.random()
        if roll < 0.35:
            target = self.rng.choice(["PAID", "SHIPPED", "CANCELED"])
            response = await self._call(
                "status", "PATCH", f"/orders/{order_id}/status", json={"status": target}
            )
            self._acknowledged(response, "order.status_changed", to_status=target)
        elif roll < 0.5:
            response = await self._call(
                "items", "PUT", f"/orders/{order_id}", json={"items": ITEMS[1:]}
            )
            self._acknowledged(response, "order.updated")
        elif roll < 0.55:
            response = await self._call("delete", "DELETE", f"/orders/{order_id}")
            self._acknowledged(response, "order.deleted")
            if response is not None and response.status_code == 200:
                self.record.deleted.add(order_id)
                self.mine.remove(order_id)
        elif roll < 0.8:
            await self._call("read", "GET", f"/orders/{order_id}")
        else:
            await self._call("list", "GET", "/orders", params={"limit": 20})


async def sign_up(http: httpx.AsyncClient, n: int) -> None:
    """A user of this workload, logged in: `http` sends their token from then on."""
    name = f"chaos{n}{uuid.uuid4().hex[:8]}"
    body = {"username": name, "email": f"{name}@example.com", "password": "chaos-pass-42"}
    for _ in range(100):
        try:
            created = await http.post("/auth/create_user", json=body)
            if created.status_code in (201, 409):
                token = await http.post(
                    "/auth/token", data={"username": name, "password": body["password"]}
                )
                if token.status_code == 200:
                    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
                    return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} could not sign up and log in")


async def run_user(
    user: User, stop: asyncio.Event, creates_per_second: float, changes_per_create: int
) -> None:
    """Paced: a create every 1/rate seconds on average (Poisson), with its changes between."""
    while not stop.is_set():
        started = time.monotonic()
        await user.create()
        for _ in range(changes_per_create):
            if stop.is_set():
                break
            await user.change()
        pause = user.rng.expovariate(creates_per_second) - (time.monotonic() - started)
        if pause > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
