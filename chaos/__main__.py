"""`python -m chaos [--short]`: the fault suite (docs/reliability.md). `make chaos` runs the
long one; `make test` runs the short one (tests/e2e/test_chaos.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from deploy.stack.config import ROOT

from chaos.faults import Fault, every_fault
from chaos.invariants import Facts, check, read_facts
from chaos.selftest import self_test
from chaos.stack import ChaosStack, chaos_stack
from chaos.workload import Record, User, run_user, sign_up
from order_query.projection import Projection, order_key, prefix

RECOVERY = 8.0  # seconds of workload after each fault before the next
AFTER = 5.0  # seconds after a fault's end still counted as its window
CONVERGED_WITHIN = 60.0


@dataclass
class FaultFigures:
    fault: str
    kind: str
    did: str
    failed_requests: int  # 5xx answers and no answers
    answers_of_500: int
    longest_without_a_create_s: float
    projection_converged_after_s: float | None  # None: not within CONVERGED_WITHIN

    def targets(self) -> list[tuple[str, bool]]:
        """The figures issue 14 sets for this kind of fault, and whether they were met."""
        converged = self.projection_converged_after_s
        if self.kind == "kill":
            return [
                (
                    "never more than 1 s without a successful create",
                    self.longest_without_a_create_s <= 1.0,
                )
            ]
        if self.kind == "broker":
            return [
                ("0 failed requests", self.failed_requests == 0),
                ("projection converged within 2 s", converged is not None and converged <= 2.0),
            ]
        if self.kind == "postgres":
            return [("0 answers of 500", self.answers_of_500 == 0)]
        return []


@dataclass
class Report:
    mode: str
    seconds: float = 0.0
    requests: int = 0
    creates: int = 0
    changes: int = 0
    faults: list[FaultFigures] = field(default_factory=list)
    invariants: dict[str, int] = field(default_factory=dict)
    violations: dict[str, list[str]] = field(default_factory=dict)
    self_test: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    drained_in_s: float = 0.0

    @property
    def passed(self) -> bool:
        """Every invariant holds, and each one failed on data corrupted for it. (The targets'
        figures are reported beside them; a machine's load can move a timing.)"""
        return not any(self.invariants.values()) and all(self.self_test.values())

    def targets(self) -> list[tuple[str, bool]]:
        met = [(f"{f.fault}: {name}", ok) for f in self.faults for name, ok in f.targets()]
        heaviest = max(self.peak_rss_mb.values(), default=0.0)
        met.append((f"each process under 120 MB resident (largest: {heaviest} MB)", heaviest < 120))
        return met


async def _converged(stack: ChaosStack, versions: dict[str, int]) -> float | None:
    """Seconds until the projection holds every order at least at its version here (read in
    one MGET a look, so the look itself takes a few milliseconds)."""
    redis = stack.redis
    assert redis is not None
    began, pending = time.monotonic(), dict(versions)
    while time.monotonic() - began < CONVERGED_WITHIN:
        live = prefix(await Projection(redis).live_generation())
        ids = list(pending)
        for order_id, raw in zip(
            ids, await redis.mget([live + order_key(i) for i in ids]), strict=True
        ):
            if raw is not None and json.loads(raw)["version"] >= pending[order_id]:
                del pending[order_id]
        if not pending:
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    return None


async def _inject(stack: ChaosStack, fault: Fault, record: Record) -> FaultFigures:
    start = time.monotonic()
    did = await fault.act(stack)
    ended = time.monotonic()
    converged = await _converged(stack, record.versions_by(ended))
    await asyncio.sleep(max(0.0, RECOVERY - (time.monotonic() - ended)))
    window_end = ended + AFTER
    return FaultFigures(
        fault=fault.name,
        kind=fault.kind,
        did=did,
        failed_requests=record.failed_between(start, window_end),
        answers_of_500=record.errors_between(start, window_end),
        longest_without_a_create_s=round(record.longest_without_a_create(start, window_end), 2),
        projection_converged_after_s=None if converged is None else round(converged, 2),
    )


async def _drain(stack: ChaosStack, record: Record, deadline: float) -> float:
    """Until nothing is left to do (every event sent, every lifecycle at its end, the
    projection at every order's last acknowledged version) or the deadline."""
    began = time.monotonic()
    while time.monotonic() < deadline:
        facts = await _read(stack, record, began, began)
        if (
            not facts.unpublished
            and not any(
                not o["is_deleted"] and o["status"] != "CANCELED" for o in facts.orders.values()
            )
            and all(
                facts.projected.get(i) is not None and facts.projected[i]["version"] == o["version"]  # type: ignore[index]
                for i, o in facts.orders.items()
            )
        ):
            break
        await asyncio.sleep(1)
    return time.monotonic() - began


async def _read(stack: ChaosStack, record: Record, ended: float, drained: float) -> Facts:
    assert stack.redis is not None and stack.node is not None
    return await read_facts(
        stack.env["ORDERS_DATABASE_URL"],
        stack.env["AUTH_DATABASE_URL"],
        stack.redis,
        stack.node.url,
        record,
        stack.interval,
        ended,
        drained,
    )


async def run(short: bool, base: int, users: int, rate: float, seed: int) -> Report:
    report = Report("short" if short else "long")
    rounds = 1 if short else 2
    interval = 1.0
    began = time.monotonic()
    run_dir = ROOT / ".run" / "chaos"
    async with chaos_stack(run_dir, base, interval) as stack:
        record, stop = Record(), asyncio.Event()
        clients = [httpx.AsyncClient(base_url=stack.gateway, timeout=10) for _ in range(users)]
        peak: dict[str, int] = {}

        async def sample_memory() -> None:
            while not stop.is_set():
                for name, rss in stack.rss().items():
                    peak[name] = max(peak.get(name, 0), rss)
                await asyncio.sleep(1)

        try:
            for n, client in enumerate(clients):
                await sign_up(client, n)
            rng = random.Random(seed)
            workers = [
                asyncio.create_task(
                    run_user(User(c, record, random.Random(rng.random())), stop, rate / users, 3)
                )
                for c in clients
            ]
            sampler = asyncio.create_task(sample_memory())
            await asyncio.sleep(10)  # the workload settles in before the first fault
            for round_ in range(1, rounds + 1):
                for fault in every_fault(round_):
                    print(f"fault: {fault.name}", flush=True)
                    report.faults.append(await _inject(stack, fault, record))
            ended = time.monotonic()
            stop.set()
            await asyncio.gather(*workers, sampler)
        finally:
            stop.set()
            for client in clients:
                await client.aclose()
        drain_deadline = time.monotonic() + 4 * interval + 60
        report.drained_in_s = round(await _drain(stack, record, drain_deadline), 1)
        facts = await _read(stack, record, ended, time.monotonic())
        violations = check(facts)
        report.invariants = {name: len(found) for name, found in violations.items()}
        report.violations = {name: found[:10] for name, found in violations.items() if found}
        report.requests = len(record.answers)
        report.creates = len(record.created)
        report.changes = len(record.changes) - len(record.created)
        report.peak_rss_mb = {name: round(rss / 2**20, 1) for name, rss in sorted(peak.items())}
        # The self-test corrupts the data: the services go first, so none repairs it.
        stack.stop_services()

        async def read_again(changed: Record) -> Facts:
            return await _read(stack, changed, ended, time.monotonic())

        report.self_test = await self_test(stack, facts, read_again)
    report.seconds = round(time.monotonic() - began, 1)
    return report


def render(report: Report) -> str:
    lines = [
        f"fault suite ({report.mode}): {report.seconds} s, {report.requests} requests, "
        f"{report.creates} orders created, {report.changes} changes acknowledged",
        "",
        "| fault | failed requests | longest without a create (s) | projection converged (s) |",
        "|---|---:|---:|---:|",
    ]
    for f in report.faults:
        converged = f.projection_converged_after_s
        shown = f"not within {CONVERGED_WITHIN:g}" if converged is None else converged
        lines.append(
            f"| {f.fault} | {f.failed_requests} | {f.longest_without_a_create_s} | {shown} |"
        )
    lines += [
        "",
        f"drained in {report.drained_in_s} s",
        "",
        "| invariant | violations | self-test (must be > 0) |",
        "|---|---:|---:|",
    ]
    for name, count in report.invariants.items():
        lines.append(f"| {name} | {count} | {report.self_test.get(name, '-')} |")
    lines += ["", "| process | peak RSS (MB) |", "|---|---:|"]
    lines += [f"| {name} | {mb} |" for name, mb in report.peak_rss_mb.items()]
    lines += ["", "| target | met |", "|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in report.targets()]
    for name, found in report.violations.items():
        lines.append(f"\nviolations of '{name}' (first ones): {found}")
    lines.append("\nPASSED" if report.passed else "\nFAILED")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--short", action="store_true", help="one fault of each kind")
    parser.add_argument("--port-base", type=int, default=26000)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--rate", type=float, default=8.0, help="creates per second, in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    report = asyncio.run(run(args.short, args.port_base, args.users, args.rate, args.seed))
    print(render(report), flush=True)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
