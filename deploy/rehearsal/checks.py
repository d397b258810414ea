"""What the rehearsal checks once the project is up: the seed flows through its gateway, the
gateway spreading requests over every replica, the event log relays' counts, and RabbitMQ's
management UI."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from deploy.rehearsal.podman import Compose
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ["tests/e2e/test_seed000_flow.py", "tests/e2e/test_seed004_flow.py"]
# These two read a service's counters through the gateway before and after an action, which
# only means something with one process behind it: with two replicas each read reaches one of
# them (docs/docker.md, "What the rehearsal proves").
PER_REPLICA_COUNTERS = [
    "tests/e2e/test_seed000_flow.py::test_the_timers_a_change_by_hand_overtook_are_found_stale",
    "tests/e2e/test_seed004_flow.py::test_each_services_metrics_count_the_seed004_routes_by_template",
]


def run_flows(gateway: str, interval: str, within: float) -> None:
    """tests/e2e's seed000 and seed004 flows, against the platform behind `gateway`."""
    env = {**os.environ, "E2E_GATEWAY_URL": gateway, "E2E_STATUS_ADVANCE_INTERVAL": interval}
    deselect = [f"--deselect={test}" for test in PER_REPLICA_COUNTERS]
    command = [sys.executable, "-m", "pytest", *FLOWS, *deselect, "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, env=env, timeout=within, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"the seed flows failed through {gateway} (pytest exit {done.returncode})"
        )


def get(
    url: str,
    *,
    user: str = "",
    password: str = "",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    request = urllib.request.Request(url)  # noqa: S310 (a URL of ours, on 127.0.0.1)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    if user:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
        status: int = answer.status
        return status, answer.read()


def management_ui(url: str, user: str, password: str) -> str:
    """The UI's page and its API answer; returns the RabbitMQ version the API reports."""
    status, page = get(f"{url}/")
    if status != 200 or b"RabbitMQ Management" not in page:
        raise RuntimeError(f"{url}/ did not serve the management UI ({status})")
    status, body = get(f"{url}/api/overview", user=user, password=password)
    overview = json.loads(body)
    if status != 200 or "management_version" not in overview:
        raise RuntimeError(f"{url}/api/overview answered {status}: {body[:200]!r}")
    return str(overview.get("rabbitmq_version", "?"))


def wait_until_served(gateway: str, within: float) -> float:
    """Sign a user up through the gateway, then wait until an order can be made and read with
    its token, several times in a row (so through every replica); returns the seconds it took.

    Each service fetches the auth service's keys on its first token; on podman 4.3 a lookup
    of another container's name can go unanswered for a while after containers join the
    network (aardvark-dns reloads on each, docs/docker.md), so this waits, with a deadline,
    rather than fail the flows on it."""
    started = time.monotonic()
    user = {"username": f"rehearsal{int(started)}", "email": f"r{int(started)}@example.com"}
    body = json.dumps({**user, "password": "rehearsal-password-1"}).encode()
    _send(f"{gateway}/auth/create_user", body, "application/json")
    form = f"username={user['username']}&password=rehearsal-password-1".encode()
    token = json.loads(_send(f"{gateway}/auth/token", form, "application/x-www-form-urlencoded"))
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    order = json.dumps({"items": [{"name": "tea", "price": "1.00", "quantity": 1}]}).encode()
    in_a_row, last = 0, ""
    while in_a_row < 4:
        try:
            _send(f"{gateway}/orders", order, "application/json", headers)
            get(f"{gateway}/orders", headers=headers)
            in_a_row += 1
        except OSError as exc:  # urllib's HTTPError too: a 503 while the keys cannot be had
            in_a_row, last = 0, str(exc)
            if time.monotonic() - started > within:
                raise RuntimeError(f"orders were not served within {within:.0f} s: {last}") from exc
            time.sleep(0.5)
    return time.monotonic() - started


def _send(
    url: str, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    request.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        data: bytes = answer.read()
        return data


def touch_every_service(gateway: str, services: Iterable[str], times: int = 6) -> None:
    """Ask for each service's metrics through the gateway a few times (every service has that
    route, and the rehearsal's address is a private one the gateway lets in): each nginx
    worker then picks every replica at least once (round robin, per worker)."""
    for service in services:
        for _ in range(times):
            status, _body = get(f"{gateway}/metrics/{service}")
            if status != 200:
                raise RuntimeError(f"{gateway}/metrics/{service} answered {status}")


def published(metrics: str) -> float:
    """The events a relay's /metrics says the broker confirmed, every type together."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == "event_log_published_total"
    )


def published_by_relays(gateway: str, relays: Iterable[str]) -> dict[str, float]:
    """Each relay's published events, from its /metrics through the gateway: the flows sign
    users up and make orders, so each relay has published some (and the gateway reaches it)."""
    counts = {}
    for relay in relays:
        status, body = get(f"{gateway}/metrics/{relay}")
        if status != 200:
            raise RuntimeError(f"{gateway}/metrics/{relay} answered {status}")
        counts[relay] = published(body.decode())
    return counts


def upstreams_used(compose: Compose, gateway_service: str) -> set[str]:
    """The upstream addresses in the gateway's JSON access log."""
    used: set[str] = set()
    for container in compose.containers(gateway_service):
        log = compose.podman.run("logs", container).stdout
        for line in log.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            for address in str(entry.get("upstream", "")).replace(" :", ",").split(","):
                if address.strip():
                    used.add(address.strip())
    return used


def replicas_unused(
    compose: Compose, ports: Mapping[str, int], used: set[str]
) -> dict[str, Sequence[str]]:
    """Each replicated service's containers that the gateway never sent a request to."""
    unused: dict[str, Sequence[str]] = {}
    for service, port in ports.items():
        idle = []
        for container in compose.containers(service):
            networks = compose.podman.inspect(container)["NetworkSettings"]["Networks"]
            addresses = {f"{n['IPAddress']}:{port}" for n in networks.values()}
            if not addresses & used:
                idle.append(container)
        if idle:
            unused[service] = idle
    return unused
