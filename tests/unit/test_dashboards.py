"""The provisioned dashboard and the alert rules, read as files (a real Prometheus runs their
queries in tests/e2e/test_dashboards.py): every panel reads the provisioned data source, every
metric they name is one docs/operations.md explains, and compose's Prometheus scrapes the same
jobs as the config rendered for `make run`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from deploy.stack import prometheus
from deploy.stack.config import load_env, load_processes

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD: dict[str, Any] = json.loads(prometheus.DASHBOARD.read_text())
DATASOURCES = yaml.safe_load(
    (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
)
ALERTS = yaml.safe_load(prometheus.ALERTS.read_text())
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
# A metric's name as PromQL names it: a sample's name ends in one of these.
METRIC = re.compile(r"\b([a-z][a-z0-9_]*?)(_total|_bucket|_seconds|_bytes|_events|_messages)?\b")
NOT_METRICS = {"sum", "by", "rate", "max", "histogram_quantile", "le", "and", "up"}


def exprs() -> list[str]:
    found = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    return found + [rule["expr"] for group in ALERTS["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metrics an expression reads (labels, functions and strings left out)."""
    bare = re.sub(r'\{[^}]*\}|"[^"]*"|by \([^)]*\)|\[[^\]]*\]', " ", expr)
    names = {m.group(0) for m in METRIC.finditer(bare) if "_" in m.group(0)}
    return {re.sub(r"_(total|bucket)$", "", name) for name in names} - NOT_METRICS


def test_every_panel_reads_the_provisioned_prometheus_and_has_a_query() -> None:
    [source] = DATASOURCES["datasources"]
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in DASHBOARD["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert panel["description"] and panel["gridPos"]["w"] > 0


def test_every_metric_the_dashboard_and_the_alerts_read_is_explained_in_the_docs() -> None:
    named = set().union(*(metric_names(expr) for expr in exprs()))
    assert {"event_log_unpublished_events", "projection_lag_seconds"} <= named
    undocumented = {name for name in named if f"`{name}" not in OPERATIONS}
    assert not undocumented


def test_the_dashboard_shows_what_an_operator_watches_first() -> None:
    text = json.dumps(DASHBOARD)
    for metric in (
        "gateway_requests_total",
        "http_request_duration_seconds_bucket",
        "event_log_unpublished_events",
        "event_log_oldest_unpublished_age_seconds",
        "event_log_publish_lag_seconds_bucket",
        "projection_lag_seconds_bucket",
        "consumer_queue_messages",
        "dead_letter_queue_messages",
        "timers_waiting",
        "timers_fired_total",
        "advance_status_commands_total",
        "process_resident_memory_bytes",
    ):
        assert metric in text, metric


def test_compose_prometheus_scrapes_the_jobs_of_make_runs_config() -> None:
    compose_jobs = {
        job["job_name"]
        for job in yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())[
            "scrape_configs"
        ]
    }
    env = load_env()
    assert compose_jobs == set(prometheus.jobs(env, load_processes(env).services))
    grafana = COMPOSE["services"]["grafana"]
    targets = {config["target"] for config in grafana["configs"]}
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/orders-platform.yml").read_text()
    )
    folder = provider["providers"][0]["options"]["path"]
    assert f"{folder}/orders-platform.json" in targets
