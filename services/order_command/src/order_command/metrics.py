"""order_command's own counters, beside the per-route HTTP metrics and the event log's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class AdvanceMetrics:
    """The status worker's `order.advance_status` commands, counted where it is decided
    whether they apply. Summed over the processes, applied + stale is the number of commands
    handled (at least once: a redelivered command is counted again, as stale)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        commands = Counter(
            "advance_status_commands",
            "order.advance_status commands handled, by outcome: applied (the order moved on) "
            "or stale (a manual change came first, the order is deleted or unknown, or the "
            "command was a duplicate)",
            ["outcome"],
            registry=registry,
        )
        self.applied = commands.labels("applied")
        self.stale = commands.labels("stale")
