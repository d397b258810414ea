"""HTTP load: N clients, each sending its next request when the last one answered.

`wrk` (C, one thread) when it is installed; otherwise an httpx async client in this process.
Both stop at a request count or a duration, whichever comes first, and report the CPU they
used themselves, since on 2 cores every bit of it is taken from the server.

With `pace` (wrk only), requests arrive at that rate as a Poisson process instead of as fast
as the server answers: before each request a client waits a random time, exponentially
distributed with a mean of clients / pace. That is how independent users arrive; a pacer
that ticks every client at once (as `hey -q` does) sends bursts of N requests together, and
measures the queue the burst makes rather than the platform.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench.measure import percentile

REQUEST_TIMEOUT = 10.0  # seconds; a request slower than this counts as failed


@dataclass(frozen=True)
class Requests:
    """What every client sends, request after request: `method` to each of `paths` in turn,
    with each of `bodies` in turn (none: no body), and the same `headers` every time."""

    method: str
    paths: Sequence[str]
    bodies: Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def form_post(cls, path: str, bodies: Sequence[str]) -> Requests:
        return cls("POST", [path], bodies, {"Content-Type": "application/x-www-form-urlencoded"})

    @classmethod
    def json_post(cls, path: str, body: str, headers: Mapping[str, str]) -> Requests:
        return cls("POST", [path], [body], {**headers, "Content-Type": "application/json"})


@dataclass(frozen=True)
class LoadResult:
    generator: str
    clients: int
    seconds: float
    ok: int  # 2xx answers
    failed: int  # other answers, and requests that got none
    p50_ms: float
    p99_ms: float
    generator_cpu_s: float

    @property
    def ok_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok_per_second": self.ok_per_second}


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def drive(
    base_url: str,
    requests: Requests,
    *,
    clients: int,
    seconds: float,
    max_requests: int,
    generator: str,
    work_dir: Path,
    pace: float | None = None,
) -> LoadResult:
    """`pace`: requests per second in all, as Poisson arrivals (wrk only); None: closed loop."""
    if generator == "wrk":
        return _drive_wrk(base_url, requests, clients, seconds, max_requests, work_dir, pace)
    if pace is not None:
        raise ValueError("paced load needs wrk (apt-get install -y wrk)")
    return asyncio.run(_drive_httpx(base_url, requests, clients, seconds, max_requests))


# --- wrk --------------------------------------------------------------------------------------

_WRK_SCRIPT = """
local method = %(method)s
local paths = {%(paths)s}
local bodies = {%(bodies)s}
local headers = {%(headers)s}
local max_requests = %(max_requests)d
local sent, answered = 0, 0

request = function()
  sent = sent + 1
  local body = nil
  if #bodies > 0 then body = bodies[(sent %% #bodies) + 1] end
  return wrk.format(method, paths[(sent %% #paths) + 1], headers, body)
end

-- A safety cap only: after a stop wrk still waits out --duration (the caller refuses the run).
response = function(status, headers, body)
  answered = answered + 1
  if answered >= max_requests then wrk.thread:stop() end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,' ..
    '"socket_errors":%%d,"p50_us":%%d,"p99_us":%%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

# Appended when paced: wrk waits `delay()` ms before each request of a connection (its first
# too, so the connections start spread out). The gaps of one connection are exponential with
# mean clients / pace, so the merged arrivals are Poisson at `pace` per second (a little
# under it: a connection's gap starts when its answer came).
_WRK_PACING = """
local mean_gap_ms = %(mean_gap_ms).6f
delay = function()
  return -mean_gap_ms * math.log(1 - math.random())
end
"""


def _lua_string(text: str) -> str:
    """A Lua string literal: JSON's escapes are Lua's for printable ASCII."""
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"only printable ASCII goes into the wrk script: {text!r}")
    return json.dumps(text)


def _drive_wrk(
    base_url: str,
    requests: Requests,
    clients: int,
    seconds: float,
    max_requests: int,
    work_dir: Path,
    pace: float | None = None,
) -> LoadResult:
    work_dir.mkdir(parents=True, exist_ok=True)
    script = work_dir / "requests.lua"
    script.write_text(
        _WRK_SCRIPT
        % {
            "method": _lua_string(requests.method),
            "paths": ", ".join(_lua_string(p) for p in requests.paths),
            "bodies": ", ".join(_lua_string(b) for b in requests.bodies),
            "headers": ", ".join(
                f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in requests.headers.items()
            ),
            "max_requests": max_requests,
        }
        + (_WRK_PACING % {"mean_gap_ms": 1000 * clients / pace} if pace else "")
    )
    argv = [
        wrk_binary() or "wrk",
        "--threads=1",
        f"--connections={clients}",
        f"--duration={max(1, round(seconds))}s",
        f"--timeout={REQUEST_TIMEOUT:g}s",
        f"--script={script}",
        base_url,
    ]
    before = _children_cpu()
    done = subprocess.run(argv, capture_output=True, timeout=seconds + 60, check=False)
    cpu = _children_cpu() - before
    output = done.stdout.decode(errors="replace")
    line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{output}\n{done.stderr.decode()}")
    figures = json.loads(line.removeprefix("BENCH_JSON "))
    if figures["requests"] >= max_requests:
        # wrk stopped sending at the cap but still counts the full duration: no valid rate.
        raise RuntimeError(
            f"wrk reached the request cap ({max_requests}) within {seconds:g} s: "
            "raise the cap or shorten the duration"
        )
    return LoadResult(
        generator="wrk",
        clients=clients,
        seconds=figures["duration_us"] / 1e6,
        ok=figures["requests"] - figures["status_errors"],
        failed=figures["status_errors"] + figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        generator_cpu_s=cpu,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- httpx ------------------------------------------------------------------------------------


async def _drive_httpx(
    base_url: str, requests: Requests, clients: int, seconds: float, max_requests: int
) -> LoadResult:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = dict(requests.headers)
    latencies: list[float] = []
    ok = failed = 0
    tickets = itertools.count()
    paths = itertools.cycle(requests.paths)
    bodies = itertools.cycle([b.encode() for b in requests.bodies] or [None])
    cpu_before = time.process_time()
    start = time.perf_counter()
    deadline = start + seconds

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal ok, failed
        while next(tickets) < max_requests and time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                response = await client.request(
                    requests.method, next(paths), content=next(bodies), headers=headers
                )
                good = response.is_success
            except httpx.HTTPError:
                good = False
            latencies.append(time.perf_counter() - sent)
            if good:
                ok += 1
            else:
                failed += 1

    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=REQUEST_TIMEOUT
    ) as client:
        await asyncio.wait_for(
            asyncio.gather(*(client_loop(client) for _ in range(clients))),
            timeout=seconds + REQUEST_TIMEOUT + 5,
        )
    elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        generator="httpx",
        clients=clients,
        seconds=elapsed,
        ok=ok,
        failed=failed,
        p50_ms=1000 * percentile(latencies, 50),
        p99_ms=1000 * percentile(latencies, 99),
        generator_cpu_s=time.process_time() - cpu_before,
    )
