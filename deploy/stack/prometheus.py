"""Prometheus for a stack started by `make run` (or the tests): a config that scrapes every
service of deploy/processes.toml on its own address and the gateway's metrics process, with
the alert rules of deploy/prometheus/alerts.yml. Compose's is deploy/prometheus/prometheus.yml;
both name the same jobs (tests/unit/test_dashboards.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from deploy.stack import gateway_metrics
from deploy.stack.config import ROOT, Service

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "orders-platform.json"
GATEWAY_JOB = "gateway"


def jobs(env: Mapping[str, str], services: Sequence[Service]) -> dict[str, list[str]]:
    """Each job's targets: every process of each service, and the gateway's metrics process."""
    found = {service.name: [process.address for process in service.each()] for service in services}
    if (metrics := gateway_metrics.address(dict(env))) is not None:
        host, port = metrics
        found[GATEWAY_JOB] = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    return found


def config(
    env: Mapping[str, str],
    services: Sequence[Service],
    *,
    scrape_interval: str = "15s",
    rules: Path = ALERTS,
) -> str:
    """The config file's text (JSON, which Prometheus reads as the YAML it is)."""
    return json.dumps(
        {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]}
                for job, targets in jobs(env, services).items()
            ],
        },
        indent=2,
    )
