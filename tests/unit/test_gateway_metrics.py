"""The gateway's metrics process and the gateway config's part in it, with no server: every
route the services serve is counted under its own template, a line from nginx is counted, and
the config sends those lines only where a metrics process is set."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from deploy.stack import gateway, gateway_metrics
from deploy.stack.config import load_env
from prometheus_client.parser import text_string_to_metric_families

PACKAGES = ["auth_service", "order_command", "order_query"]


def public_routes() -> set[tuple[str, str]]:
    """Every method and path of the services' public OpenAPI documents, and the board."""
    found = {("GET", "/board"), ("GET", "/board/assets/{name}")}
    for package in PACKAGES:
        document = importlib.import_module(f"{package}.main").create_app().openapi()
        for path, operations in document["paths"].items():
            found |= {(method.upper(), path) for method in operations}
    return found


@pytest.mark.parametrize(("method", "template"), sorted(public_routes()))
def test_each_public_route_is_counted_under_its_own_template(method: str, template: str) -> None:
    example = re.sub(r"\{[a-z_]+\}", "0f8fad5b-d9cb-469f-a165-70867728950e", template)
    assert gateway_metrics.route_of(f"{example}?limit=3") == template


def test_a_path_no_route_knows_is_unmatched() -> None:
    assert gateway_metrics.route_of("/orders/1/2/3") == gateway_metrics.UNMATCHED
    assert gateway_metrics.route_of("/wp-admin.php") == gateway_metrics.UNMATCHED


def _samples(registry: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()  # type: ignore[arg-type]
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_line_from_nginx_is_counted_for_the_gateway_and_for_seed004() -> None:
    metrics = gateway_metrics.GatewayMetrics()
    entry = {"m": "POST", "u": "/orders/create_new_order", "s": 429, "t": 0.002}
    metrics.count(b"<190>Nov 30 00:00:00 gateway: " + json.dumps(entry).encode())
    metrics.count(b"<190>Nov 30 00:00:00 gateway: not json")
    labels = (("method", "POST"), ("route", "/orders/create_new_order"))
    gateway_counts = _samples(metrics.registry)
    assert gateway_counts[("gateway_requests_total", (*labels, ("status", "429")))] == 1
    seed004 = _samples(metrics.seed004)
    assert seed004[("http_calls_total", labels)] == 1
    assert seed004[("http_failures_total", (*labels, ("status", "429")))] == 1
    assert ("http_successes_total", labels) not in seed004


def test_an_unknown_method_is_counted_as_other() -> None:
    metrics = gateway_metrics.GatewayMetrics()
    metrics.count(b'<190>x gateway: {"m":"BREW","u":"/orders","s":405,"t":0.001}')
    counts = _samples(metrics.registry)
    key = (("method", "OTHER"), ("route", "/orders"), ("status", "405"))
    assert counts[("gateway_requests_total", key)] == 1


def test_the_gateway_sends_its_lines_and_serves_the_counts_only_with_a_metrics_port(
    tmp_path: object,
) -> None:
    env = load_env() | {"GATEWAY_METRICS_HOST": "127.0.0.1", "GATEWAY_METRICS_PORT": "18999"}
    on = gateway.settings(env)["ACCESS_LOGS"]
    assert "syslog:server=127.0.0.1:18999" in on and "/dev/stdout gateway_json" in on
    off = gateway.settings(env | {"GATEWAY_METRICS_PORT": ""})["ACCESS_LOGS"]
    assert "syslog" not in off
    quiet = gateway.settings(env | {"GATEWAY_METRICS_PORT": "", "GATEWAY_ACCESS_LOG": "off"})
    assert quiet["ACCESS_LOGS"].strip() == "access_log off;"
