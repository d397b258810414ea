"""The Redis projection: each order as of its latest version, the indexes the lists read,
each order's history, and the names of users.

Applying an event is an optimistic compare-and-set: read the order, judge the event's version
and fold it in here, then one script (`_WRITE_IF_UNCHANGED`) writes the order, the indexes
it enters and leaves, and its history entry, only if the order is still what was read. Two
consumer processes never interleave on one order: if another wrote it in between, nothing
is written and the event is judged again. Two round trips, where WATCH, GET and MULTI ...
EXEC made three.

Keys (prefix `oq:`):
- `order:{id}`: the order's JSON, exactly as the API answers it
- `orders`, `orders:{status}`, `user:{user_id}:orders` and `user:{user_id}:orders:{status}`:
  sorted sets of live (not deleted) order ids, scored by creation time (epoch seconds), so
  a list and its status filter read one index
- `order:{id}:history`: a hash of history entries by version
- `user:{id}`: a hash of the user's name, email and role (from `user.registered`)

A page of a list is one script (`_NEWEST`): the index's ids and their orders in one round
trip, the orders' JSON joined in Redis into the one string the answer is built around. It
reads order keys named by the index, not passed as KEYS: the projection is one Redis, not a
cluster.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any, cast

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from order_query.folding import Verdict, fold, history_entry, judge, snapshot_entry

PREFIX = "oq:"
ALL = f"{PREFIX}orders"

# KEYS: the order, its history, the indexes it leaves, then those it enters. ARGV: the order's
# JSON as it was read ("" for none), its new JSON, how many indexes it leaves, its id, its
# score, the history field and entry, and "keep" to leave an entry already there (HSETNX).
# Answers 1 once written, 0 (nothing written) if the order is no longer what was read.
_WRITE_IF_UNCHANGED = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local leaving = tonumber(ARGV[3])
for i = 3, 2 + leaving do redis.call('ZREM', KEYS[i], ARGV[4]) end
for i = 3 + leaving, #KEYS do redis.call('ZADD', KEYS[i], ARGV[5], ARGV[4]) end
if ARGV[8] == 'keep' then
  redis.call('HSETNX', KEYS[2], ARGV[6], ARGV[7])
else
  redis.call('HSET', KEYS[2], ARGV[6], ARGV[7])
end
return 1
"""

# KEYS[1]: an index. ARGV: the order keys' prefix, the top and bottom scores, the page's size,
# and the cursor's score and id ("" and "": from the top). Newest first; ids that share a
# score go by id, downwards, as ZREVRANGEBYSCORE gives them. Answers the orders' JSON joined
# by commas, and the score and id of the last id of the page when another follows (else nil).
# A page holds fewer orders than asked when an id of the index has no order (never, while
# the order and its indexes are written together): its cursor still goes on from there.
_NEWEST = """
local index, prefix, top, bottom = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local limit, after_score, after_id = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local ids, scores = {}, {}
if after_score ~= '' then
  local ties = redis.call('ZREVRANGEBYSCORE', index, after_score, after_score, 'WITHSCORES')
  for i = 1, #ties, 2 do
    if ties[i] < after_id and #ids <= limit then
      ids[#ids + 1], scores[#scores + 1] = ties[i], ties[i + 1]
    end
  end
  top = '(' .. after_score
end
if #ids <= limit then
  local below = redis.call('ZREVRANGEBYSCORE', index, top, bottom, 'WITHSCORES',
                           'LIMIT', 0, limit + 1 - #ids)
  for i = 1, #below, 2 do
    ids[#ids + 1], scores[#scores + 1] = below[i], below[i + 1]
  end
end
local shown = math.min(limit, #ids)
if shown == 0 then return {'', false, false} end
local keys = {}
for i = 1, shown do keys[i] = prefix .. ids[i] end
local found = {}
for _, order in ipairs(redis.call('MGET', unpack(keys))) do
  if order then found[#found + 1] = order end
end
if #ids > limit then return {table.concat(found, ','), scores[limit], ids[limit]} end
return {table.concat(found, ','), false, false}
"""


def order_key(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}"


def history_key(order_id: str) -> str:
    return f"{PREFIX}order:{order_id}:history"


def index_key(user_id: str | None = None, status: str | None = None) -> str:
    """The sorted set of one user's live orders (everybody's: None), of one status or all."""
    key = f"{PREFIX}user:{user_id}:orders" if user_id else ALL
    return f"{key}:{status}" if status else key


def indexes(order: dict[str, Any]) -> set[str]:
    """Every index the order is in: none once it is deleted."""
    if order["is_deleted"]:
        return set()
    user_id, status = str(order["user_id"]), order["status"]
    return {index_key(), index_key(None, status), index_key(user_id), index_key(user_id, status)}


def user_key(user_id: str) -> str:
    return f"{PREFIX}user:{user_id}"


def score(order: dict[str, Any]) -> float:
    return datetime.fromisoformat(order["created_at"]).timestamp()


class Outcome(Enum):
    APPLIED = "applied"
    IGNORED = "ignored"  # a duplicate or an older version
    GAP = "gap"  # missing versions: the caller repairs, then tries again


class Projection:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._write: AsyncScript = redis.register_script(_WRITE_IF_UNCHANGED)
        self._newest: AsyncScript = redis.register_script(_NEWEST)

    async def newest(
        self, index: str, top: float, bottom: float, limit: int, after: tuple[float, str] | None
    ) -> tuple[bytes, tuple[float, str] | None]:
        """Up to `limit` orders of `index` from score `top` down to `bottom`, after `after`
        (a score and an id): their JSON joined by commas, and where the next page starts
        (None: nothing follows)."""
        score, order_id = after if after else ("", "")
        joined, last_score, last_id = await self._newest(
            keys=[index],
            args=[
                order_key(""),
                repr(top),
                repr(bottom),
                limit,
                repr(score) if after else "",
                order_id,
            ],
        )
        if last_score is None:
            return joined, None
        return joined, (float(last_score), last_id.decode())

    async def apply(self, event: dict[str, Any]) -> Outcome:
        order_id = str(event["aggregate_id"])
        while True:
            raw = await self.get(order_id)
            current = json.loads(raw) if raw else None
            verdict = judge(current["version"] if current else 0, event["version"])
            if verdict is Verdict.GAP:
                return Outcome.GAP
            entry = json.dumps(history_entry(event))
            if verdict is Verdict.OLD:
                # Its state is in already (and stays: versions only grow), but its history
                # entry may not be (it arrived after a repair): add it, or replace a snapshot's.
                await self.redis.hset(history_key(order_id), str(event["version"]), entry)
                return Outcome.IGNORED
            if await self._write_if_unchanged(raw, current, fold(current, event), entry):
                return Outcome.APPLIED

    async def put(self, order: dict[str, Any]) -> bool:
        """Store the command side's state of an order, unless the projection is as new
        already. Its version gets a snapshot entry in the history if no event gave one."""
        while True:
            raw = await self.get(str(order["id"]))
            current = json.loads(raw) if raw else None
            if current and current["version"] >= order["version"]:
                return False
            entry = json.dumps(snapshot_entry(order))
            if await self._write_if_unchanged(raw, current, order, entry, keep_entry=True):
                return True

    async def _write_if_unchanged(
        self,
        raw: bytes | None,
        previous: dict[str, Any] | None,
        order: dict[str, Any],
        entry: str,
        *,
        keep_entry: bool = False,
    ) -> bool:
        """The order, its indexes and its version's history entry, if the stored order is
        still `raw`. What `previous` was in is known from its own state, which was written
        with its indexes."""
        order_id = str(order["id"])
        was, now = indexes(previous) if previous else set(), indexes(order)
        leaving, entering = sorted(was - now), sorted(now - was)
        written = await self._write(
            keys=[order_key(order_id), history_key(order_id), *leaving, *entering],
            args=[
                raw or b"",
                json.dumps(order, separators=(",", ":")),
                len(leaving),
                order_id,
                repr(score(order)),
                str(order["version"]),
                entry,
                "keep" if keep_entry else "replace",
            ],
        )
        return bool(written)

    async def get(self, order_id: str) -> bytes | None:
        return cast("bytes | None", await self.redis.get(order_key(order_id)))

    async def get_many(self, order_ids: list[str]) -> list[bytes | None]:
        if not order_ids:
            return []
        values = await self.redis.mget([order_key(i) for i in order_ids])
        return cast("list[bytes | None]", values)

    async def history(self, order_id: str) -> list[dict[str, Any]]:
        entries = await self.redis.hgetall(history_key(order_id))
        return sorted((json.loads(e) for e in entries.values()), key=lambda e: e["version"])

    async def add_user(self, user: dict[str, Any]) -> None:
        await self.redis.hset(
            user_key(str(user["id"])),
            mapping={"username": user["username"], "email": user["email"], "role": user["role"]},
        )

    async def usernames(self, user_ids: set[str]) -> dict[str, str | None]:
        ids = sorted(user_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in ids:
                pipe.hget(user_key(user_id), "username")
            names = await pipe.execute()
        return {
            i: (n.decode() if isinstance(n, bytes) else n) for i, n in zip(ids, names, strict=True)
        }
