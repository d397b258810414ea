"""How every service serves HTTP: uvicorn over the service's app factory, traced, JSON-logged,
and stopped gracefully (in-flight requests finish, then the lifespan closes its parts)."""

from __future__ import annotations

import uvicorn

from shared.telemetry import setup_telemetry


def serve(factory: str, *, service: str, host: str, port: int) -> None:
    """`factory` is `module:function` building the app (nothing is built at import)."""
    setup_telemetry(service)
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        log_config=None,  # shared.logs.setup_logging has set the JSON handler
        timeout_graceful_shutdown=10,
    )
