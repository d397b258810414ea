"""The worker's metrics, beside the per-route HTTP metrics every service has. Whether a timer
applied is counted where it is decided: order_command's `advance_status_commands_total`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class TimerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.fired = Counter(
            "timers_fired",
            "Timers come due and sent to order_command as order.advance_status (confirmed)",
            registry=registry,
        )
        self.waiting = Gauge(
            "timers_waiting",
            "Order events waiting out the interval: messages in the wait queue",
            registry=registry,
        )
