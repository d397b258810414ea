"""The platform's benchmarks: `make bench`, or `uv run --frozen python bench/run.py`.

    python bench/run.py                 # every benchmark, full length: rewrites bench/RESULTS.md
    python bench/run.py --quick         # short runs: bench/out/RESULTS-quick.md, not RESULTS.md
    python bench/run.py --only logins   # one benchmark (repeat --only for more)

Raw figures go to bench/out/<name>-<time>.json (gitignored). docs/benchmarks.md says more.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import argon2_params, creates, lag, logins, reads, rebuild, timers, token_verify
from bench.machine import (
    machine,
    machine_busy_seconds,
    own_cpu_seconds,
    server_cpu_seconds,
    utc_now,
    wait_until_quiet,
)
from bench.report import OUT_DIR, RESULTS, Section, write_raw, write_results

DISTURBED_ABOVE = 0.10  # cores kept busy by other processes during a benchmark
Benchmark = Callable[[argparse.Namespace], Section]
BENCHMARKS: dict[str, Benchmark] = {
    "argon2": lambda args: argon2_params.run(quick=args.quick),
    "logins": lambda args: logins.run(quick=args.quick, client=args.client),
    "tokens": lambda args: token_verify.run(quick=args.quick),
    "creates": lambda args: creates.run(quick=args.quick, client=args.client),
    "lag": lambda args: lag.run(quick=args.quick),
    "reads": lambda args: reads.run(quick=args.quick, client=args.client),
    "timers": lambda args: timers.run(quick=args.quick),
    "rebuild": lambda args: rebuild.run(quick=args.quick),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (one of: {', '.join(BENCHMARKS)}); may be repeated",
    )
    parser.add_argument(
        "--client",
        choices=["auto", "wrk", "httpx"],
        default="auto",
        help="the HTTP load generator for `logins`, `creates` and `reads` "
        "(auto: wrk when installed, else httpx)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before each benchmark, wait up to this long for the other processes on the "
        "machine to go quiet (default 0: do not wait)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        metavar="N",
        help="run a benchmark that other processes disturbed again, up to N more times, and "
        "keep the least disturbed run (default 0)",
    )
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every launcher's `with`: servers stop


def run_one(name: str, args: argparse.Namespace, command: str) -> Section:
    quiet = wait_until_quiet(args.wait_quiet) if args.wait_quiet > 0 else None
    print(f"== {name}: running", flush=True)
    busy, own, start = machine_busy_seconds(), own_cpu_seconds(), time.monotonic()
    servers = server_cpu_seconds()
    section = BENCHMARKS[name](args)
    elapsed = time.monotonic() - start
    ours = (own_cpu_seconds() - own) + (server_cpu_seconds() - servers)
    others = max(0.0, (machine_busy_seconds() - busy) - ours) / elapsed
    section.other_cores = others
    section.disturbed = section.disturbed or others > DISTURBED_ABOVE
    info = machine()
    unquiet = f"; it did not go quiet within {args.wait_quiet:g} s before" if quiet is False else ""
    section.body[:0] = [
        f"Measured {utc_now()} with `{command}`{' (quick run)' if args.quick else ''}. "
        f"{info.line()}. While it ran, other processes (not the benchmark's own, nor "
        f"Postgres, RabbitMQ and Redis doing its work) kept "
        f"{others:.2f} cores busy on average (0.00 is a quiet machine; above about "
        f"{DISTURBED_ABOVE:.2f} the figures were disturbed){unquiet}.",
        "",
    ]
    meta = {
        "command": command,
        "quick": args.quick,
        "measured_at": utc_now(),
        "machine": info.as_dict(),
        "seconds": elapsed,
        "other_processes_cores": others,
        "quiet_before": quiet,
        "disturbed": section.disturbed,
    }
    raw = write_raw(section, meta)
    print(section.markdown(), flush=True)
    print(f"== {name}: raw figures in {_shown(raw)}", flush=True)
    return section


def run_until_undisturbed(name: str, args: argparse.Namespace, command: str) -> Section:
    """Up to 1 + --retries runs; the first undisturbed one, else the least disturbed."""
    attempts = [run_one(name, args, command)]
    while attempts[-1].disturbed and len(attempts) <= args.retries:
        print(f"== {name}: disturbed by other processes; running it again", flush=True)
        attempts.append(run_one(name, args, command))
    if attempts[-1].disturbed:
        return min(attempts, key=lambda s: (s.disturbed, s.other_cores))
    return attempts[-1]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    command = shlex.join(["uv", "run", "--frozen", "python", "bench/run.py", *argv])
    names = [n for n in BENCHMARKS if not args.only or n in args.only]
    target = OUT_DIR / "RESULTS-quick.md" if args.quick else RESULTS
    for name in names:  # each section is written as soon as it is measured
        write_results([run_until_undisturbed(name, args, command)], target)
        print(f"== {name}: written to {_shown(target)}", flush=True)
    return 0


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the servers the benchmark started are stopped", file=sys.stderr)
        sys.exit(130)
