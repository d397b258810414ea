"""A writer of an event log started in process as the platform runs it: the service's app,
and beside it its relay's (`<service> relay`, a process of its own there)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from shared.event_log.serving import relay_app
from shared.settings import ServiceSettings


@contextlib.asynccontextmanager
async def relayed(
    app: FastAPI,
    settings: ServiceSettings,
    database_url: SecretStr,
    *,
    shutdown_timeout: float = 30,
) -> AsyncIterator[FastAPI]:
    """`app` started, with a relay of `database_url`'s log on `settings`' broker; on the way
    out the relay stops first."""
    relay = relay_app(settings, name="relay", database_url=database_url)
    async with (
        LifespanManager(app, startup_timeout=30, shutdown_timeout=shutdown_timeout),
        LifespanManager(relay, startup_timeout=30, shutdown_timeout=shutdown_timeout),
    ):
        yield app
