"""Compose's start order, kept by the rehearsal itself: podman 4.3 run as root without systemd
neither runs healthchecks by itself nor waits on `condition: service_healthy`. So each service
is started alone (`up --no-deps`) once what it `depends_on` is as its condition asks: healthy
(its healthcheck, run here until it passes), or finished with status 0."""

from __future__ import annotations

import graphlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from deploy.rehearsal.podman import Compose

Say = Callable[[str], None]


def start_order(services: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The services without a profile, each after everything it depends on."""
    wanted = {name for name, service in services.items() if not service.get("profiles")}
    graph = {name: set(services[name].get("depends_on", {})) & wanted for name in wanted}
    sorter = graphlib.TopologicalSorter(graph)
    return list(sorter.static_order())


def conditions(service: Mapping[str, Any]) -> dict[str, str]:
    """What `service` waits for: {dependency: condition} (a list means service_started)."""
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return dict.fromkeys(depends, "service_started")
    return {name: how.get("condition", "service_started") for name, how in depends.items()}


class Starter:
    """Starts a compose project service by service, in order, each after its conditions."""

    def __init__(self, compose: Compose, services: Mapping[str, Mapping[str, Any]], say: Say):
        self.compose = compose
        self.services = services
        self.say = say
        self.done: set[tuple[str, str]] = set()  # (service, condition) already met

    def up(self, within: float) -> None:
        deadline = time.monotonic() + within
        for name in start_order(self.services):
            for dependency, condition in conditions(self.services[name]).items():
                self.wait(dependency, condition, deadline)
            started = time.monotonic()
            self.compose("up", "--detach", "--no-deps", name)
            self.say(f"started {name} ({time.monotonic() - started:.1f} s)")

    def wait(self, service: str, condition: str, deadline: float) -> None:
        if (service, condition) in self.done or condition == "service_started":
            return
        containers = self.compose.containers(service)
        if not containers:
            raise RuntimeError(f"{service} has no container to wait for")
        for container in containers:
            if condition == "service_healthy":
                self.healthy(container, deadline)
            elif condition == "service_completed_successfully":
                self.completed(container, deadline)
            else:
                raise RuntimeError(f"{service}: unknown depends_on condition {condition!r}")
        self.done.add((service, condition))
        self.say(f"{service}: {condition.removeprefix('service_').replace('_', ' ')}")

    def healthy(self, container: str, deadline: float) -> None:
        """Run the container's healthcheck until it passes (podman records the status)."""
        podman = self.compose.podman
        while not podman.ok("healthcheck", "run", container, timeout=60):
            state = podman.inspect(container)["State"]
            if not state.get("Running"):
                raise RuntimeError(f"{container} stopped (exit {state.get('ExitCode')})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{container} was not healthy in time")
            time.sleep(1)

    def completed(self, container: str, deadline: float) -> None:
        podman = self.compose.podman
        left = max(1.0, deadline - time.monotonic())
        code = podman.run("wait", container, timeout=left).stdout.strip()
        if code != "0":
            raise RuntimeError(f"{container} exited {code}")

    def all_healthy(self, within: float) -> list[str]:
        """Every container with a healthcheck, healthy; returns their names."""
        deadline = time.monotonic() + within
        checked = []
        for container in self.compose.containers():
            health = self.compose.podman.inspect(container)["Config"].get("Healthcheck")
            if health and health.get("Test") and health["Test"][0] != "NONE":
                self.healthy(container, deadline)
                checked.append(container)
        return checked
