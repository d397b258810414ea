"""The Redis projection: each order as of its latest version, the indexes the lists read,
each order's history, and the names of users, in one *generation* of keys.

Generations: every key lives under the live generation's prefix, `oq:<n>:` (`oq:` alone for
the generation before generations were numbered). `oq:generation` names the live one, and
every script below reads it first, so a rebuild builds a new generation beside the live one
and makes it live in one SET (rebuild.py). Names under a prefix:
- `order:{id}`: the order's JSON (an `OrderOut`), exactly as the API answers it
- `orders`, `orders:{status}`, `user:{user_id}:orders` and `user:{user_id}:orders:{status}`:
  sorted sets of live (not deleted) order ids, scored by creation time (epoch seconds), so
  a list and its status filter read one index
- `order:{id}:history`: a hash of history entries (`folding.Entry`'s JSON) by version
- `user:{id}`: a hash of the user's name, email and role (from `user.registered`)

Applying an event is an optimistic compare-and-set: read the order, judge the event's version
and fold it in here, then one script (`_WRITE_IF_UNCHANGED`) writes the order, the indexes
it enters and leaves, and its history entry, only if the order is still what was read. Two
consumer processes never interleave on one order: if another wrote it in between, nothing
is written and the event is judged again.

A page of a list is one script (`_PAGE`): the index's ids and their orders in one round trip,
filtered on the total in Redis when asked, the orders' JSON joined into the one string the
answer is built around. The scripts name keys they are not passed in KEYS: the projection is
one Redis, not a cluster.
"""

from __future__ import annotations

from collections import defaultdict
from enum import Enum
from itertools import chain
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.typing import EncodableT, FieldT

from order_query.folding import Entry, Verdict, fold, history_entry, judge, snapshot_entry
from shared.events import OrderEvent, UserRegistered
from shared.schemas import OrderOut

ROOT = "oq:"
LIVE = f"{ROOT}generation"  # the live generation's number; none: the unnumbered one
# The change feed (a Redis stream the live board reads, stream.py): each write of an order
# appends its new JSON, in the same script. Outside the generations: a rebuild's switch must
# not cut its readers off, and it holds nothing a rebuild restores (only recent changes).
CHANGES = f"{ROOT}changes"
CHANGES_KEPT = 10_000  # about; older entries are trimmed (a reader that far behind resyncs)

_PREFIX = f"""
local live = redis.call('GET', '{LIVE}')
local p = live and ('{ROOT}' .. live .. ':') or '{ROOT}'
"""

_GET = _PREFIX + "return redis.call('GET', p .. 'order:' .. ARGV[1])"

# ARGV: order ids. Answers their JSON (nil where none), in order.
_GET_MANY = (
    _PREFIX
    + """
local found = {}
for i = 1, #ARGV do found[i] = redis.call('GET', p .. 'order:' .. ARGV[i]) end
return found
"""
)

# ARGV[1]: a JSON array of writes, one an order: its id, its JSON as it was read ("" for
# none), its new JSON ("" when only history entries are added), its score, the indexes it
# leaves and those it enters (under the prefix), its history entries by version, whether an
# entry already there is kept (HSETNX: a snapshot's) or replaced, and its new JSON at each
# version applied, for the change feed. A new JSON is written, with all the rest of its
# order, only if the stored order is still what was read. Answers, an order, 1 once written
# and 0 where nothing was (it is no longer what was read).
_WRITE_MANY = (
    _PREFIX
    + f"""
local written = {{}}
for n, o in ipairs(cjson.decode(ARGV[1])) do
  local id, key = o[1], p .. 'order:' .. o[1]
  if o[3] ~= '' and (redis.call('GET', key) or '') ~= o[2] then
    written[n] = 0
  else
    if o[3] ~= '' then
      redis.call('SET', key, o[3])
      for _, index in ipairs(o[5]) do redis.call('ZREM', p .. index, id) end
      for _, index in ipairs(o[6]) do redis.call('ZADD', p .. index, o[4], id) end
    end
    local set = o[8] and 'HSETNX' or 'HSET'
    for version, entry in pairs(o[7]) do redis.call(set, key .. ':history', version, entry) end
    for _, change in ipairs(o[9]) do
      redis.call('XADD', '{CHANGES}', 'MAXLEN', '~', '{CHANGES_KEPT}', '*', 'order', change)
    end
    written[n] = 1
  end
end
return written
"""
)

_HISTORY = _PREFIX + "return redis.call('HGETALL', p .. 'order:' .. ARGV[1] .. ':history')"

# ARGV: user ids. Answers their usernames (nil for one never heard of), in order.
_USERNAMES = (
    _PREFIX
    + """
local names = {}
for i = 1, #ARGV do names[i] = redis.call('HGET', p .. 'user:' .. ARGV[i], 'username') end
return names
"""
)

# ARGV: user id, then field, value pairs.
_ADD_USER = _PREFIX + "redis.call('HSET', p .. 'user:' .. ARGV[1], unpack(ARGV, 2))"

# A page of an index, newest first. ARGV: the index's name, the top and bottom scores, the
# page's size, the cursor's score and id ("" and "": from the top), the total's bounds
# ("": none) and how many ids one page looks at most. Ids that share a score go by id,
# downwards, as ZREVRANGEBYSCORE gives them. An id whose order is gone is passed over. Answers
# the orders' JSON joined by commas, and the score and id of where the next page starts (the
# last order of this one; when the look ended early, the last id looked at), else nil.
_PAGE = (
    _PREFIX
    + """
local index, top, bottom = p .. ARGV[1], ARGV[2], ARGV[3]
local limit, after_score, after_id = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local min_total, max_total, most = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local filtering = (min_total ~= nil) or (max_total ~= nil)
local page, last_score, last_id, looked, more = {}, false, false, 0, false

local function take(ids, scores)
  if #ids == 0 then return false end
  local keys = {}
  for i = 1, #ids do keys[i] = p .. 'order:' .. ids[i] end
  local orders = redis.call('MGET', unpack(keys))
  for i = 1, #ids do
    looked = looked + 1
    local order = orders[i]
    if order and filtering then
      local total = tonumber(cjson.decode(order).total_price)
      if (min_total and total < min_total) or (max_total and total > max_total) then
        order = false
      end
    end
    if order then
      if #page == limit then more = true; return true end
      page[#page + 1] = order
      last_score, last_id = scores[i], ids[i]
    end
    if looked >= most then
      last_score, last_id, more = scores[i], ids[i], true
      return true
    end
  end
  return false
end

local done = false
if after_score ~= '' then
  local ties = redis.call('ZREVRANGEBYSCORE', index, after_score, after_score, 'WITHSCORES')
  local ids, scores = {}, {}
  for i = 1, #ties, 2 do
    if ties[i] < after_id then ids[#ids + 1], scores[#scores + 1] = ties[i], ties[i + 1] end
  end
  done = take(ids, scores)
  top = '(' .. after_score
end
local chunk = filtering and 200 or (limit + 1)
local offset = 0
while not done do
  local rows = redis.call('ZREVRANGEBYSCORE', index, top, bottom, 'WITHSCORES',
                          'LIMIT', offset, chunk)
  local ids, scores = {}, {}
  for i = 1, #rows, 2 do ids[#ids + 1], scores[#scores + 1] = rows[i], rows[i + 1] end
  done = take(ids, scores) or #ids < chunk
  offset = offset + chunk
end
if more then return {table.concat(page, ','), last_score, last_id} end
return {table.concat(page, ','), false, false}
"""
)


def prefix(generation: int | None) -> str:
    """The keys' prefix of a generation (None: the unnumbered one, from before numbers)."""
    return ROOT if generation is None else f"{ROOT}{generation}:"


def order_key(order_id: str) -> str:
    return f"order:{order_id}"


def history_key(order_id: str) -> str:
    return f"order:{order_id}:history"


def user_key(user_id: str) -> str:
    return f"user:{user_id}"


def index_key(user_id: str | None = None, status: str | None = None) -> str:
    """The sorted set of one user's live orders (everybody's: None), of one status or all."""
    key = f"user:{user_id}:orders" if user_id else "orders"
    return f"{key}:{status}" if status else key


def indexes(order: OrderOut) -> set[str]:
    """Every index the order is in: none once it is deleted."""
    if order.is_deleted:
        return set()
    user_id, status = str(order.user_id), order.status.value
    return {index_key(), index_key(None, status), index_key(user_id), index_key(user_id, status)}


def score(order: OrderOut) -> str:
    """Its place in the indexes: its creation time in epoch seconds, as a string (Lua would
    write a number back with 14 digits)."""
    return repr(order.created_at.timestamp())


def stored(order: bytes | str | None) -> OrderOut | None:
    """An order as the projection stores it, read back."""
    return None if order is None else OrderOut.model_validate_json(order)


class Outcome(Enum):
    APPLIED = "applied"
    IGNORED = "ignored"  # a duplicate or an older version
    GAP = "gap"  # missing versions: the caller repairs, then tries again


class Projection:
    """The live generation, whichever it is at each call."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._get: AsyncScript = redis.register_script(_GET)
        self._get_many: AsyncScript = redis.register_script(_GET_MANY)
        self._write_many: AsyncScript = redis.register_script(_WRITE_MANY)
        self._history: AsyncScript = redis.register_script(_HISTORY)
        self._usernames: AsyncScript = redis.register_script(_USERNAMES)
        self._add_user: AsyncScript = redis.register_script(_ADD_USER)
        self._page: AsyncScript = redis.register_script(_PAGE)

    async def page(
        self,
        index: str,
        top: float,
        bottom: float,
        limit: int,
        after: tuple[float, str] | None,
        total: tuple[float | None, float | None] = (None, None),
        most: int = 5_000,
    ) -> tuple[bytes, tuple[float, str] | None]:
        """Up to `limit` orders of `index` from score `top` down to `bottom`, after `after`
        (a score and an id), whose total is within `total`: their JSON joined by commas, and
        where the next page starts (None: nothing follows)."""
        score, order_id = after if after else ("", "")
        low, high = total
        joined, last_score, last_id = await self._page(
            args=[
                index,
                repr(top),
                repr(bottom),
                limit,
                repr(score) if after else "",
                order_id,
                "" if low is None else repr(low),
                "" if high is None else repr(high),
                most,
            ]
        )
        if last_score is None:
            return joined, None
        return joined, (float(last_score), last_id.decode())

    async def apply_many(self, events: list[OrderEvent]) -> list[Outcome | None]:
        """Apply events with one read and one write of Redis: each order's events, in
        version order, folded onto the order as read. An outcome for each event; None where
        another writer changed its order between the read and the write (nothing of that
        order was written: apply its events again)."""
        positions: dict[str, list[int]] = defaultdict(list)
        for n, event in enumerate(events):
            positions[str(event.aggregate_id)].append(n)
        ids = list(positions)
        read = await self.get_many(ids)
        outcomes: list[Outcome | None] = [None] * len(events)
        writes, written_by = [], []
        for order_id, raw in zip(ids, read, strict=True):
            previous = stored(raw)
            order, entries, changes = previous, {}, []
            mine = sorted(positions[order_id], key=lambda n: events[n].version)
            for n in mine:
                event = events[n]
                verdict = judge(order.version if order else 0, event.version)
                if verdict is Verdict.GAP:
                    outcomes[n] = Outcome.GAP
                    continue
                # An old event's state is in already (versions only grow), but its history
                # entry may not be (it arrived after a repair): add it, or replace a snapshot's.
                entries[event.version] = history_entry(event)
                outcomes[n] = Outcome.IGNORED
                if verdict is Verdict.APPLY:
                    order = fold(order, event)
                    changes.append(order.model_dump_json())
                    outcomes[n] = Outcome.APPLIED
            if entries:
                written_by.append([n for n in mine if outcomes[n] is not Outcome.GAP])
                writes.append(_write(order_id, raw, previous, order, entries, changes))
        if writes:
            done = await self._write_many(args=[orjson.dumps(writes)])
            for ok, mine in zip(done, written_by, strict=True):
                for n in mine if not ok else ():
                    outcomes[n] = None
        return outcomes

    async def apply(self, event: OrderEvent) -> Outcome:
        while (outcome := (await self.apply_many([event]))[0]) is None:
            pass  # another writer changed the order meanwhile: judge the event again
        return outcome

    async def put(self, order: OrderOut) -> bool:
        """Store the command side's state of an order, unless the projection is as new
        already. Its version gets a snapshot entry in the history if no event gave one."""
        order_id = str(order.id)
        while True:
            raw = await self.get(order_id)
            current = stored(raw)
            if current and current.version >= order.version:
                return False
            entries = {order.version: snapshot_entry(order)}
            changes = [order.model_dump_json()]
            write = _write(order_id, raw, current, order, entries, changes, keep=True)
            if (await self._write_many(args=[orjson.dumps([write])]))[0]:
                return True

    async def get(self, order_id: str) -> bytes | None:
        return cast("bytes | None", await self._get(args=[order_id]))

    async def get_many(self, order_ids: list[str]) -> list[bytes | None]:
        return cast("list[bytes | None]", await self._get_many(args=order_ids))

    async def history(self, order_id: str) -> list[Entry]:
        flat = await self._history(args=[order_id])
        entries = [Entry.model_validate_json(entry) for entry in flat[1::2]]
        return sorted(entries, key=lambda e: e.version)

    async def add_user(self, user: UserRegistered) -> None:
        await self._add_user(args=[str(user.id), *chain.from_iterable(user_fields(user).items())])

    async def usernames(self, user_ids: set[str]) -> dict[str, str | None]:
        ids = sorted(user_ids)
        if not ids:
            return {}
        names = await self._usernames(args=ids)
        return {
            i: (n.decode() if isinstance(n, bytes) else n) for i, n in zip(ids, names, strict=True)
        }

    async def live_generation(self) -> int | None:
        live = await self.redis.get(LIVE)
        return None if live is None else int(live)


def user_fields(user: UserRegistered) -> dict[FieldT, EncodableT]:
    """What the projection keeps of a user (the history names them): its Redis hash."""
    return {"username": user.username, "email": user.email, "role": user.role.value}


def _write(
    order_id: str,
    raw: bytes | None,
    previous: OrderOut | None,
    order: OrderOut | None,
    entries: dict[int, Entry],
    changes: list[str],
    *,
    keep: bool = False,
) -> list[Any]:
    """One order's part of a _WRITE_MANY: `order` is written (with the indexes it leaves and
    enters, known from `previous`'s own state) only where something changed it; its JSON is
    the last of `changes`, each the order's JSON after one change."""
    history = {str(version): entry.model_dump_json() for version, entry in entries.items()}
    if not changes or order is None:
        return [order_id, "", "", "", [], [], history, keep, changes]
    was, now = indexes(previous) if previous else set(), indexes(order)
    return [
        order_id,
        (raw or b"").decode(),
        changes[-1],
        score(order),
        sorted(was - now),
        sorted(now - was),
        history,
        keep,
        changes,
    ]
