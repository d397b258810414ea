"""`make compose-check`'s pieces that need no engine: the stand-in images cover what compose
pulls, the layer it adds only loosens what its tests need, its start order is compose's, and
it reads what a relay published from the relay's own metrics."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from deploy.rehearsal import checks, composefile, images
from deploy.rehearsal.startup import conditions, start_order
from prometheus_client import generate_latest

from shared.event_log.metrics import EventLogMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = composefile.load(composefile.COMPOSE_FILE)
LAYER = composefile.load(composefile.CHECK_LAYER)
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
PULLED = images.pulled_images(COMPOSE, DOCKERFILE)
# What each server's healthcheck or the compose file runs inside its image, and the package of
# Debian's that brings it into the stand-in.
TOOLS = {
    "postgres": ("pg_isready", "postgresql-15"),
    "redis": ("redis-cli", "redis-server"),
    "rabbitmq": ("rabbitmq-diagnostics", "rabbitmq-server"),
    "gateway": ("curl", "curl"),
}


def test_the_rehearsal_builds_a_stand_in_for_every_image_compose_and_the_dockerfile_pull() -> None:
    assert PULLED == [
        "nginx:1.28",
        "postgres:16",
        "python:3.11-slim-bookworm",
        "rabbitmq:3-management",
        "redis:7",
    ]
    for image in PULLED:
        containerfile = (images.folder(image) / "Containerfile").read_text()
        assert re.search(r"^FROM docker\.io/library/debian:bookworm-slim$", containerfile, re.M)
        assert f"Stand-in for {image}:" in containerfile, "each says what it stands in for"


@pytest.mark.parametrize("service", sorted(TOOLS))
def test_each_stand_in_has_what_its_healthcheck_runs(service: str) -> None:
    tool, package = TOOLS[service]
    definition = COMPOSE["services"][service]
    assert tool in " ".join(definition["healthcheck"]["test"])
    containerfile = (images.folder(definition["image"]) / "Containerfile").read_text()
    assert re.search(rf"apt-get install -y [^\n]*\b{re.escape(package)}\b", containerfile)


@pytest.mark.parametrize("service", ["postgres", "redis", "rabbitmq"])
def test_each_server_stand_in_keeps_its_data_where_compose_mounts_a_volume(service: str) -> None:
    definition = COMPOSE["services"][service]
    containerfile = (images.folder(definition["image"]) / "Containerfile").read_text()
    for mount in definition["volumes"]:
        target = mount.split(":")[1]
        assert f"VOLUME {target}" in containerfile


def test_the_postgres_stand_in_honours_the_settings_compose_gives_it() -> None:
    entrypoint = (images.STANDINS / "postgres" / "entrypoint.sh").read_text()
    for name in COMPOSE["services"]["postgres"]["environment"]:
        assert name in entrypoint
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "docker-entrypoint-initdb.d"):
        assert name in entrypoint


def test_the_rabbitmq_stand_in_honours_the_default_user_settings() -> None:
    entrypoint = (images.STANDINS / "rabbitmq" / "entrypoint.sh").read_text()
    for name in ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_DEFAULT_VHOST"):
        assert name in entrypoint


@pytest.mark.parametrize("script", sorted(images.STANDINS.glob("*/entrypoint.sh")))
def test_each_entrypoint_can_be_run(script: Path) -> None:
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/bin/sh\n")


def test_the_rehearsal_layer_resets_every_start_interval_podman_43_cannot_take() -> None:
    with_interval = {
        name
        for name, s in COMPOSE["services"].items()
        if "start_interval" in s.get("healthcheck", {})
    }
    reset = {
        name
        for name, s in LAYER["services"].items()
        if s.get("healthcheck", {}).get("start_interval") == composefile.RESET
    }
    assert reset == with_interval


def test_the_rehearsal_layer_changes_nothing_but_settings_and_those_resets() -> None:
    for name, service in LAYER["services"].items():
        assert set(service) <= {"environment", "healthcheck"}, name
        assert set(service.get("healthcheck", {})) <= {"start_interval"}, name


def test_the_services_start_after_what_they_depend_on() -> None:
    order = start_order(COMPOSE["services"])
    assert "jaeger" not in order, "a profile's service is not started"
    for name in order:
        for dependency in conditions(COMPOSE["services"][name]):
            assert order.index(dependency) < order.index(name), (dependency, name)


def test_images_are_named_as_podman_stores_them() -> None:
    assert images.qualified("postgres:16") == "docker.io/library/postgres:16"
    assert (
        images.qualified("jaegertracing/jaeger:2.17.0") == "docker.io/jaegertracing/jaeger:2.17.0"
    )
    assert images.qualified("quay.io/x/y:1") == "quay.io/x/y:1"


def test_what_a_relay_published_is_read_from_its_metrics() -> None:
    metrics = EventLogMetrics()
    metrics.relay.published.labels(type="order.created").inc(3)
    metrics.relay.published.labels(type="order.status_changed").inc(2)
    metrics.relay.failures.inc()
    assert checks.published(generate_latest(metrics.registry).decode()) == 5
    assert checks.published(generate_latest(EventLogMetrics().registry).decode()) == 0
