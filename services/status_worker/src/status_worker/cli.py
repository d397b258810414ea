"""`status-worker serve`: the command compose and `make run` start."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from shared.logs import setup_logging
from shared.telemetry import setup_telemetry
from status_worker.settings import StatusWorkerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="status-worker", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve /healthz, /readyz, /metrics on STATUS_WORKER_HOST:STATUS_WORKER_PORT; "
        "set and fire the lifecycle timers",
    )
    parser.parse_args(argv)

    settings = StatusWorkerSettings()
    setup_logging("status_worker", settings.log_level)
    setup_telemetry("status_worker")
    uvicorn.run(
        "status_worker.main:create_app",
        factory=True,
        host=settings.status_worker_host,
        port=settings.status_worker_port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
