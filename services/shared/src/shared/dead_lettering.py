"""A message's last delivery: if its handler fails once more, the consumer dead-letters it
itself, with what went wrong, rather than leave it to the broker, which records only that the
delivery limit was reached (docs/operations.md: dead letters).

A consumer queue's message is redelivered after each failure, up to `DELIVERY_LIMIT` times
(RabbitMQ counts them in `x-delivery-count`). On the last delivery a failure is published,
confirmed, to the queue's dead-letter queue with these headers, then the message is acked:

- `x-error`: the exception's type and message (secrets scrubbed, 500 characters at most);
- `x-attempts`: how many deliveries failed;
- `x-failed-at`: when, ISO 8601 UTC;
- `x-queue`: the queue it failed in;
- `x-invalid`: "true" when the message itself cannot be read (not JSON, not the contract's
  shape): replaying it cannot help, and `replay --all` leaves it.

Should that publish fail, the message is nacked as before and the broker dead-letters it
after its last delivery, without the notes. A dependency that is down never gets here: the
handlers wait it out holding the message (`shared.faults.wait_out_faults`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from faststream import BaseMiddleware
from faststream.message import StreamMessage
from pydantic import ValidationError

from shared.confirms import require_confirm
from shared.logs import scrub
from shared.topology import DEAD_LETTERS, DELIVERY_LIMIT

log = logging.getLogger(__name__)

INVALID_ERRORS: tuple[type[Exception], ...] = (ValidationError, json.JSONDecodeError, ValueError)


def is_last_delivery(headers: Mapping[str, Any]) -> bool:
    return int(headers.get("x-delivery-count") or 0) >= DELIVERY_LIMIT


def letter_headers(headers: Mapping[str, Any], exc: Exception, queue: str) -> dict[str, Any]:
    """A dead letter's headers: the message's own (not the broker's `x-` ones), and the notes."""
    kept = {k: v for k, v in headers.items() if not str(k).startswith("x-")}
    return kept | notes(exc, queue, _attempts(headers))


def notes(exc: Exception, queue: str, attempts: int) -> dict[str, str]:
    return {
        "x-error": scrub(f"{type(exc).__name__}: {exc}")[:500],
        "x-attempts": str(attempts),
        "x-failed-at": datetime.now(UTC).isoformat(timespec="seconds"),
        "x-queue": queue,
        "x-invalid": "true" if isinstance(exc, INVALID_ERRORS) else "false",
    }


def log_dead_lettered(
    message_id: str | None, queue: str, headers: Mapping[str, Any], exc: Exception
) -> None:
    log.error(
        "message %s dead-lettered from %s after %s deliveries: %s",
        message_id,
        queue,
        _attempts(headers),
        type(exc).__name__,
        extra={"event": "message.dead_lettered", "queue": queue},
    )


def _attempts(headers: Mapping[str, Any]) -> int:
    return int(headers.get("x-delivery-count") or 0) + 1


class DeadLetterOnLastDelivery(BaseMiddleware):
    async def consume_scope(
        self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        try:
            return await call_next(msg)
        except Exception as exc:
            headers = dict(msg.headers or {})
            subscriber = self.context.get_local("handler_")
            queue = getattr(getattr(subscriber, "queue", None), "name", None)
            arguments = getattr(getattr(subscriber, "queue", None), "arguments", None) or {}
            route = arguments.get("x-dead-letter-routing-key")
            if not is_last_delivery(headers) or not queue or not route:
                raise
            await self._dead_letter(msg, headers, exc, queue, route)
            return None

    async def _dead_letter(
        self,
        msg: StreamMessage[Any],
        headers: dict[str, Any],
        exc: Exception,
        queue: str,
        route: str,
    ) -> None:
        broker = self.context.get("broker")
        try:
            confirmation = await broker.publish(
                msg.body,
                exchange=DEAD_LETTERS,
                routing_key=route,
                headers=letter_headers(headers, exc, queue),
                message_id=msg.message_id,
                content_type=msg.content_type,
                persist=True,
                timeout=10,
            )
            require_confirm(confirmation, f"dead letter {msg.message_id}")
        except Exception:
            log.warning(
                "could not dead-letter %s from %s itself; the broker will", msg.message_id, queue
            )
            raise exc from None
        log_dead_lettered(msg.message_id, queue, headers, exc)
