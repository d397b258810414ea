"""The gateway's own request counts (`/metrics/gateway`) and its access log, through the main
stack: by route template, method and status, its own refusals included, and a POST refused
with 429 is a POST in both."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
from deploy.stack.config import ROOT
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RUNNING_GATEWAY
from tests.support.waiting import eventually

STACK_LOG = ROOT / ".run" / "e2e" / "stack.log"


async def _requests(http: httpx.AsyncClient) -> dict[tuple[str, str, str], float]:
    answer = await http.get("/metrics/gateway")
    assert answer.status_code == 200, answer.text
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
        if s.name == "gateway_requests_total"
    }


def _access_lines(log: Path, request_id_prefix: str) -> list[dict[str, object]]:
    lines = []
    for raw in log.read_text(errors="replace").splitlines():
        process, _, entry = raw.partition(" | ")
        if process.strip() == "nginx" and request_id_prefix in entry and entry.startswith("{"):
            lines.append(json.loads(entry))
    return lines


async def test_requests_are_counted_by_route_template_method_and_status(gateway_url: str) -> None:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        before = await _requests(http)
        order_id = str(uuid.uuid4())
        assert (await http.get(f"/orders/{order_id}")).status_code == 401
        assert (await http.get("/no/such/place")).status_code == 404
        key_401 = ("GET", "/orders/{order_id}", "401")
        key_404 = ("GET", "<unmatched>", "404")
        after = await eventually(
            lambda: _requests(http),
            until=lambda now: (
                now.get(key_401, 0) > before.get(key_401, 0)
                and now.get(key_404, 0) > before.get(key_404, 0)
            ),
            what="both requests counted",
        )
    assert not any(order_id in route for _, route, _ in after), "never the raw path"


async def test_a_post_refused_with_429_is_a_post_in_the_access_log_and_the_counts(
    gateway_url: str,
) -> None:
    tag = f"burst-{uuid.uuid4().hex[:8]}"
    transport = httpx.AsyncHTTPTransport(
        local_address="127.0.0.3", limits=httpx.Limits(max_connections=300)
    )
    async with httpx.AsyncClient(base_url=gateway_url, transport=transport, timeout=60) as burst:
        form = {"username": "nobody-at-all", "password": "not-the-password"}
        answers = await asyncio.gather(
            *(
                burst.post("/auth/token", data=form, headers={"X-Request-ID": f"{tag}.{i}"})
                for i in range(300)
            )
        )
    refused = sum(answer.status_code == 429 for answer in answers)
    assert refused, [a.status_code for a in answers][:10]

    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        await eventually(
            lambda: _requests(http),
            until=lambda now: now.get(("POST", "/auth/token", "429"), 0) >= refused,
            what="the 429s counted as POSTs",
        )
    if RUNNING_GATEWAY:
        return  # its access log is not ours to read
    logged = await eventually(
        lambda: asyncio.to_thread(_access_lines, STACK_LOG, tag),
        until=lambda lines: sum(line["status"] == 429 for line in lines) >= refused,
        what="the 429s in the access log",
    )
    assert {line["method"] for line in logged if line["status"] == 429} == {"POST"}
