"""The dashboard and the alert rules against a real Prometheus (Debian's `prometheus`, which
Grafana cannot be here: it is in no registry these machines reach) scraping the lifecycle
stack: every panel query of deploy/grafana/dashboards/orders-platform.json parses and returns
series, and every alert rule of deploy/prometheus/alerts.yml loads and evaluates."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from deploy.stack import prometheus
from deploy.stack.config import load_env, load_processes
from deploy.stack.launcher import Launcher
from deploy.stack.servers import ensure_installed

from tests.e2e.accounts import Account
from tests.e2e.stacks import LifecycleStack, free_port, port_in_use
from tests.support.waiting import eventually

RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval stands for here (scrapes every second)
ITEMS = [{"name": "tea", "price": "2.50", "quantity": 2}]


def panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(prometheus.DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", RATE_INTERVAL))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


@contextlib.contextmanager
def running_prometheus(config: str, where: Path) -> Iterator[str]:
    binary = ensure_installed("prometheus", "prometheus")
    if binary is None:
        pytest.fail("Prometheus is not installed and could not be: apt-get install prometheus")
    (where / "prometheus.yml").write_text(config)
    port = free_port()
    argv = [
        binary,
        f"--config.file={where / 'prometheus.yml'}",
        f"--storage.tsdb.path={where / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    url = f"http://127.0.0.1:{port}"
    with Launcher(os.environ, log_dir=where) as launcher:
        prometheus_server = launcher.start("prometheus", argv)
        launcher.wait_ready(prometheus_server, f"{url}/-/ready", time.monotonic() + 60)
        yield url
    assert port_in_use(port) is False
    print(prometheus_server.tail(20))  # noqa: T201 (its warnings, in the test's output)


@dataclass(frozen=True)
class Scraping:
    url: str
    targets: dict[str, list[str]]  # each job's


@pytest.fixture
async def scraping(lifecycle_stack: LifecycleStack, tmp_path: Path) -> AsyncIterator[Scraping]:
    if lifecycle_stack.env is None:
        pytest.skip("a platform not started by the tests: its processes are not known here")
    env = {**load_env(), **lifecycle_stack.env}
    services = load_processes(env).services
    config = prometheus.config(env, services, scrape_interval="1s")
    with running_prometheus(config, tmp_path) as url:
        yield Scraping(url, prometheus.jobs(env, services))


async def _query(http: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    answer = await http.get("/api/v1/query", params={"query": expr})
    body: dict[str, Any] = answer.json()
    return body


async def test_every_panel_query_returns_series_and_every_alert_rule_loads(
    scraping: Scraping, lifecycle_user: Account
) -> None:
    # Something to see: an order the timers walk to CANCELED, one canceled by hand (whose
    # timer is then stale), a request no route knows.
    for _ in range(2):
        created = await lifecycle_user.http.post("/orders", json={"items": ITEMS})
        assert created.status_code == 201, created.text
    canceled = await lifecycle_user.http.patch(
        f"/orders/{created.json()['id']}/status", json={"status": "CANCELED"}
    )
    assert canceled.status_code == 200, canceled.text
    assert (await lifecycle_user.http.get("/nowhere")).status_code == 404

    targets = sum(len(each) for each in scraping.targets.values())
    async with httpx.AsyncClient(base_url=scraping.url, timeout=10) as http:
        jobs = await eventually(
            lambda: _query(http, "count_over_time(up[1m]) >= 5 and up == 1"),
            until=lambda body: len(body["data"]["result"]) == targets,
            timeout=60,
            what="five scrapes of every process, all up",
        )
        assert {r["metric"]["job"] for r in jobs["data"]["result"]} == {
            "auth",
            "auth_relay",
            "order_command",
            "order_command_relay",
            "order_query",
            "status_worker",
            "gateway",
        }

        empty = []
        for title, expr in panel_queries():
            body = await _query(http, expr)
            assert body["status"] == "success", (title, expr, body)
            if not body["data"]["result"]:
                empty.append((title, expr))
        assert not empty, f"panel queries that returned no series: {empty}"

        rules = await eventually(
            lambda: http.get("/api/v1/rules"),
            until=lambda answer: (
                all(
                    rule.get("health") == "ok"
                    for group in answer.json()["data"]["groups"]
                    for rule in group["rules"]
                )
                and answer.json()["data"]["groups"]
            ),
            timeout=20,
            what="every alert rule loaded and evaluated",
        )
    loaded = {rule["name"] for group in rules.json()["data"]["groups"] for rule in group["rules"]}
    written = {
        line.split(":", 1)[1].strip()
        for line in prometheus.ALERTS.read_text().splitlines()
        if line.strip().startswith("- alert:")
    }
    assert loaded == written
