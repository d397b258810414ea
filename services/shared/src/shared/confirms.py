"""What a publisher confirm means: the broker took the message into a queue, or it did not."""

from __future__ import annotations

from aiormq import spec


class NotConfirmed(ConnectionError):
    """The broker did not take a message: no queue is bound for it (it came back), or it
    refused it. A ConnectionError, so a consumer that was publishing waits it out holding its
    own message (`shared.faults.wait_out_faults`), as it does while the broker is down."""


def require_confirm(confirmation: object, what: str) -> None:
    """Raise unless the broker confirmed `what` into a queue. A publish with `mandatory=True`
    (FastStream's default) that no queue took returns the message rather than raising."""
    if not isinstance(confirmation, spec.Basic.Ack):
        raise NotConfirmed(f"{what}: not confirmed by the broker ({type(confirmation).__name__})")
