"""status_worker's settings (each field reads the environment variable of its own name)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import ServiceSettings

# RabbitMQ's largest message TTL: 2^32 - 1 milliseconds (about 49 days).
LONGEST_INTERVAL = (2**32 - 1) / 1000


class StatusWorkerSettings(ServiceSettings):
    status_worker_host: str = "127.0.0.1"
    status_worker_port: int = 8004
    # Seconds between two steps of an order's lifecycle: the wait queue's message TTL, so
    # whole milliseconds count (1.5 is 1500 ms).
    status_advance_interval: float = Field(default=60.0, ge=0.001, le=LONGEST_INTERVAL)
