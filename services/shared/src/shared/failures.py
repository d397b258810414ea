"""What can go wrong that the caller can act on, named for what it means, never for how a
protocol says it. The domain and the service layer raise these; the edge translates them
once: shared.app to an HTTP answer (`HTTP_STATUS`), a consumer to ack, wait or dead-letter.

`code` is the stable name a client sees in the error body (`{"error": {"code": ...}}`).
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class Failure(Exception):
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Malformed(Failure):
    """The request cannot be read as one (a header, a cursor that is not ours)."""

    code = "bad_request"


class Unauthenticated(Failure):
    """Who asks is not known: no credentials, or not valid ones. `reason` is RFC 6750's
    error code for the challenge (`invalid_token`, `invalid_request`)."""

    code = "unauthorized"

    def __init__(
        self, message: str = "Not authenticated", *, reason: str = "invalid_token"
    ) -> None:
        super().__init__(message)
        self.reason = reason


class NotAllowed(Failure):
    """Who asks is known, and may not do this."""

    code = "forbidden"


class NotFound(Failure):
    """No such thing, or not one the caller may know of."""

    code = "not_found"


def found(thing: T | None, message: str) -> T:
    """`thing`, or NotFound(message) if there is none."""
    if thing is None:
        raise NotFound(message)
    return thing


class Refused(Failure):
    """Not allowed from the current state (a final status, a name already taken)."""

    code = "conflict"


class Stale(Failure):
    """The change was conditional on a version that is no longer the current one."""

    code = "precondition_failed"


class Invalid(Failure):
    """Well-formed, but the values break a rule (the items, the total, a reused key)."""

    code = "validation_error"


class UpstreamRefused(Failure):
    """Another service answered, but not as it should: waiting will not help."""

    code = "bad_gateway"


class DependencyUnavailable(Failure):
    """A server this one needs is away: trying again shortly may work."""

    code = "dependency_unavailable"


class Overloaded(Failure):
    """This process has no capacity free for the request in time (every one of its database
    connections stayed busy): its servers are up, and trying again shortly may work."""

    code = "overloaded"
