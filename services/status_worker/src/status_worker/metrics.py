"""The worker's counters, beside the per-route HTTP metrics every service has.

`applied` and `stale` count order_command's answers (`AdvanceStatusResult`), which come back
to a queue all worker processes share: summed over the processes, applied + stale is the
number of commands order_command has handled, while one process's figures need not match
its own `fired`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.events import AdvanceStatusResult


class TimerMetrics:
    def __init__(self) -> None:
        # Registered with the app's registry once it exists (`register`).
        self.scheduled = Counter(
            "timers_scheduled", "Timers set: confirmed into the wait queue", registry=None
        )
        self.fired = Counter(
            "timers_fired",
            "Timers come due and sent to order_command as order.advance_status (confirmed)",
            registry=None,
        )
        self.applied = Counter(
            "timers_applied", "Commands order_command answered: the order moved on", registry=None
        )
        self.stale = Counter(
            "timers_stale",
            "Commands order_command answered: nothing to do (a manual change came first, "
            "or the order is deleted or unknown)",
            registry=None,
        )

        self.waiting = Gauge(
            "timers_waiting",
            "Timers set and not yet due: messages in the wait queue",
            registry=None,
        )

    def register(self, registry: CollectorRegistry) -> None:
        for metric in (self.scheduled, self.fired, self.applied, self.stale, self.waiting):
            registry.register(metric)

    def count(self, result: AdvanceStatusResult) -> None:
        (self.applied if result.applied else self.stale).inc()
