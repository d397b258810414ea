"""docker-compose.yml brought up for real: `make compose-check` (docs/docker.md).

Installs podman, runc, debootstrap (apt) where missing; builds the stand-ins of the servers'
images (deploy/standins/) and the project's image (deploy/Dockerfile); brings the compose file
up with podman-compose under a project name of its own, on free ports, service by service as
`depends_on` asks; waits until every healthcheck passes; runs the seed000 and seed004 flows of
tests/e2e through the compose gateway; checks that the gateway used every replica, that each
event log relay published events, and that RabbitMQ's management UI answers; then takes it
all down with its volumes and fails if anything of it is left. Images stay, as the next run's
cache.

    python deploy/compose_check.py          # the whole rehearsal
    python deploy/compose_check.py --keep   # ... but leave the project up to look at it
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.rehearsal import checks, composefile, images, tools, usage
from deploy.rehearsal.podman import Compose, Podman
from deploy.rehearsal.startup import Starter
from deploy.stack.config import ROOT, load_processes

PROJECT = "orders-platform-check"
RUN_DIR = ROOT / ".run" / "compose-check"
CACHE = Path.home() / ".cache" / "orders-platform" / "compose-check"
APP_IMAGE = "orders-platform:local"


class Phases:
    """How long each step took, said as it ends and summed at the end."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.took: list[tuple[str, float]] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        say(f"{name} ...")
        began = time.monotonic()
        yield
        self.took.append((name, time.monotonic() - began))
        say(f"{name}: {self.took[-1][1]:.0f} s")

    def summary(self) -> str:
        lines = [f"  {name:<62} {seconds:5.0f} s" for name, seconds in self.took]
        total = time.monotonic() - self.started
        return "\n".join([*lines, f"  {'total':<62} {total:5.0f} s"])


def say(line: str) -> None:
    print(f"compose-check | {line}", flush=True)


def free_port() -> int:
    """A port nothing listens on, from the kernel's ephemeral range (never 8000-8004,
    18000-18020 or the servers' own ports)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _one_service_per_built_image(spec: dict[str, Any]) -> list[str]:
    first: dict[str, str] = {}
    for name, service in spec["services"].items():
        if "build" in service and not service.get("profiles"):
            first.setdefault(service.get("image", name), name)
    return list(first.values())


def _usage(compose: Compose) -> dict[str, usage.Usage]:
    found = {name: usage.read(compose.podman, name) for name in compose.containers()}
    return {name: used for name, used in found.items() if used is not None}


def _stop_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # so the `finally` below takes the project down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="leave the project up at the end")
    keep = parser.parse_args().keep
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    phases = Phases()

    with phases.step("tools (apt: podman, runc, debootstrap)"):
        tools.install_packages()
        podman = Podman(tools.podman_env(RUN_DIR))
    spec = composefile.load(composefile.COMPOSE_FILE)
    layer = composefile.load(composefile.CHECK_LAYER)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    pulled = images.pulled_images(spec, dockerfile)

    with phases.step("stand-in images"):
        say(f"{images.BASE}: {images.ensure_base(podman, CACHE)}")
        for image in pulled:
            say(f"{image}: {images.ensure_standin(podman, image)}")

    gateway_port, management_port = free_port(), free_port()
    compose = Compose(
        podman,
        tools.podman_compose(),
        PROJECT,
        [composefile.COMPOSE_FILE, composefile.CHECK_LAYER],
        variables={
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(gateway_port),
            "RABBITMQ_MANAGEMENT_PORT": str(management_port),
        },
        build_args="--network=host",
    )
    gateway = f"http://127.0.0.1:{gateway_port}"
    if leftovers := compose.leftovers():
        say(f"an earlier run left {', '.join(leftovers)}: taking it down first")
        compose("down", "--volumes")
    renderer_env = composefile.container_env(spec, "gateway-config", layer)
    replicated = {
        service.name: service.port
        for service in load_processes(renderer_env).services
        if int(spec["services"][service.name].get("deploy", {}).get("replicas", 1)) > 1
    }
    relays = [s.name for s in load_processes(renderer_env).services if s.argv[1:] == ["relay"]]
    interval = composefile.container_env(spec, "status_worker", layer)["STATUS_ADVANCE_INTERVAL"]
    user, password = composefile.credentials(renderer_env["RABBITMQ_URL"])

    failed = True
    try:
        with phases.step(f"build {APP_IMAGE} (deploy/Dockerfile)"):
            # Once per image: podman-compose would build it for each of its services at
            # once, which two cores do not survive well.
            for service in _one_service_per_built_image(spec):
                compose("build", service, timeout=1800)
        starter = Starter(compose, spec["services"], say)
        with phases.step("up, in depends_on order, until every container is healthy"):
            starter.up(within=600)
            healthy = starter.all_healthy(within=300)
            say(f"healthy: {', '.join(healthy)}")
        with phases.step("seed000 and seed004 flows through the gateway"):
            before = _usage(compose)
            flows_began = time.monotonic()
            waited = checks.wait_until_served(gateway, within=120)
            say(f"orders are made and read through the gateway ({waited:.1f} s to the first)")
            checks.touch_every_service(gateway, replicated)
            checks.run_flows(gateway, interval, within=900)
            seconds = time.monotonic() - flows_began
            say(f"what each container used, CPU over the flows' {seconds:.0f} s:")
            print(usage.table(before, _usage(compose), seconds), flush=True)
        with phases.step("replicas, relays, management UI, health after the flows"):
            used = checks.upstreams_used(compose, "gateway")
            if unused := checks.replicas_unused(compose, replicated, used):
                raise RuntimeError(f"the gateway sent nothing to {unused}")
            say(f"the gateway used every replica of {', '.join(replicated)}")
            counts = checks.published_by_relays(gateway, relays)
            if idle := [relay for relay, count in counts.items() if count <= 0]:
                raise RuntimeError(f"{', '.join(idle)} published nothing over the flows")
            say("events published: " + ", ".join(f"{r} {n:.0f}" for r, n in counts.items()))
            ui = f"http://127.0.0.1:{management_port}"
            version = checks.management_ui(ui, user, password)
            say(f"RabbitMQ {version}: its management UI answers on {ui}")
            starter.all_healthy(within=60)
        failed = False
    finally:
        if failed:
            for container in compose.containers():
                log = podman.run("logs", "--tail", "25", container, check=False)
                say(f"--- the last lines of {container}:\n{log.stdout}{log.stderr}")
        if keep and not failed:
            say(f"left up at {gateway}; take it down with: podman-compose -p {PROJECT} down -v")
        else:
            with phases.step("down, with the volumes"):
                compose("down", "--volumes")
                if left := compose.leftovers():
                    raise RuntimeError(f"still there after down: {', '.join(left)}")
    names = {image: images.qualified(image) for image in pulled} | {
        APP_IMAGE: f"localhost/{APP_IMAGE}"
    }
    sizes = {image: images.size(podman, name) for image, name in names.items()}
    say("images:\n" + "\n".join(f"  {i:<34} {int(b) / 1e6:6.0f} MB" for i, b in sizes.items()))
    say("passed; each step took:\n" + phases.summary())
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        say(f"FAILED: {exc}")
        sys.exit(1)
