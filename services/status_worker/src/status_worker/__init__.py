"""The status worker: moves orders along their lifecycle on timers RabbitMQ holds."""
