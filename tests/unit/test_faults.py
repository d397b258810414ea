"""Which errors count as "a dependency is down": a 503 for HTTP, a wait for a consumer."""

from __future__ import annotations

import pytest
from asyncpg import exceptions as pg_exc
from sqlalchemy import exc as sa_exc

from shared.faults import is_unavailable


def wrapped(orig: Exception) -> sa_exc.DBAPIError:
    """As SQLAlchemy raises what asyncpg raised: a DBAPIError caused by it."""
    try:
        raise sa_exc.DBAPIError("select 1", None, orig) from orig
    except sa_exc.DBAPIError as exc:
        return exc


@pytest.mark.parametrize(
    "orig",
    [
        pg_exc.TooManyConnectionsError("sorry, too many clients already"),
        pg_exc.CannotConnectNowError("the database system is starting up"),
        pg_exc.AdminShutdownError("terminating connection due to administrator command"),
    ],
)
def test_postgres_saying_it_cannot_serve_now_is_a_dependency_fault(orig: Exception) -> None:
    assert is_unavailable(wrapped(orig))


def test_a_refused_statement_is_not_a_dependency_fault() -> None:
    assert not is_unavailable(wrapped(pg_exc.UniqueViolationError("duplicate key")))
