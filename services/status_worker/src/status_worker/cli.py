"""`status-worker serve | dead-letters | replay-dead-letters`: the command compose and `make
run` start, and the ones over dead-lettered messages (replayed once their cause is fixed)."""

from __future__ import annotations

import sys

from shared.cli import ServiceCli
from status_worker import topology
from status_worker.settings import StatusWorkerSettings

# `replay-dead-letters --queue due`: due timers, which fire at once when replayed.
QUEUES = {"due": topology.DUE}

CLI = ServiceCli(
    prog="status-worker",
    service="status_worker",
    description=__doc__ or "",
    settings=StatusWorkerSettings,
    serve_help="serve /healthz, /readyz, /metrics on STATUS_WORKER_HOST:STATUS_WORKER_PORT; "
    "send the lifecycle timers on as they come due",
    address=lambda s: (s.status_worker_host, s.status_worker_port),
    dead_letter_queues=list(QUEUES.values()),
    replay_queues=QUEUES,
)
main = CLI.main

if __name__ == "__main__":
    sys.exit(main())
