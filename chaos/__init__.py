"""The fault suite: `make chaos` (docs/reliability.md).

A private stack of the platform (its own ports, databases, Redis and RabbitMQ node, started by
`make run`'s own runner) takes a steady workload through its gateway while faults are injected
one at a time: a process of each service killed, the broker stopped and started, Postgres
connections terminated, Redis flushed and the projection rebuilt. Then, after a drain with a
deadline, invariants are checked and printed as figures, and each invariant is run once
against data corrupted on purpose, where it must fail. It exits non-zero on any violation.
"""
