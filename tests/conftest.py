"""What every layer of tests shares: the servers, and waiting on a condition with a deadline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.telemetry import setup_telemetry
from tests.support.servers import Servers, provide_servers


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    try:
        with provide_servers() as found:
            yield found
    except RuntimeError as exc:
        pytest.exit(str(exc), returncode=3)


@pytest.fixture(scope="session", autouse=True)
def telemetry() -> None:
    """A real tracer provider, as the services install at start, so trace context flows."""
    setup_telemetry("tests")
