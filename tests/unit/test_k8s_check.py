"""`make k8s-check` finds what is wrong: each check, shown one broken manifest it refuses.
(`make test` runs the check itself over every overlay; these hold the checker to its word.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from deploy.kubecheck import checks, manifests, schema
from deploy.kubecheck.manifests import Obj

DEV = manifests.render(manifests.K8S / "overlays" / "dev")
PRODUCTION = manifests.render(manifests.K8S / "overlays" / "production")


def edited(objects: list[Obj], kind: str, name: str, change: Callable[[Obj], Any]) -> list[Obj]:
    copied = copy.deepcopy(objects)
    target = manifests.find(copied, kind, name)
    assert target is not None, f"{kind}/{name}"
    change(target)
    return copied


def container(obj: Obj, index: int = 0) -> Obj:
    found: Obj = obj["spec"]["template"]["spec"]["containers"][index]
    return found


def test_the_overlays_as_committed_pass_every_check() -> None:
    for objects, production in ((DEV, False), (PRODUCTION, True)):
        assert checks.commands(objects) == []
        assert checks.waits_for_migrations(objects) == []
        assert checks.settings(objects, production=production) == []
        assert checks.wiring(objects) == []
        assert checks.hardening(objects) == []


def test_a_misspelt_field_is_refused_by_the_schema() -> None:
    def misspell(obj: Obj) -> None:
        container(obj)["readinesProbe"] = container(obj).pop("readinessProbe")

    broken = edited(DEV, "Deployment", "auth", misspell)
    assert any("readinesProbe" in problem for problem in schema.problems(broken))


def test_a_probe_on_a_path_the_service_does_not_serve_is_found() -> None:
    def elsewhere(obj: Obj) -> None:
        container(obj)["livenessProbe"]["httpGet"]["path"] = "/health"

    problems = checks.probes(edited(DEV, "Deployment", "order-query", elsewhere))
    assert any("/health is not served" in problem for problem in problems)


def test_a_probe_on_a_port_the_service_does_not_listen_on_is_found() -> None:
    def other_port(obj: Obj) -> None:
        container(obj)["readinessProbe"]["httpGet"]["port"] = 8080

    problems = checks.probes(edited(DEV, "Deployment", "status-worker", other_port))
    assert any("port 8080; it listens on 8004" in problem for problem in problems)


def test_a_setting_a_service_reads_and_is_not_given_is_found() -> None:
    config = next(o for o in DEV if o["kind"] == "ConfigMap")
    broken = edited(
        DEV, "ConfigMap", config["metadata"]["name"], lambda c: c["data"].pop("ORDER_COMMAND_URL")
    )
    problems = checks.settings(broken, production=False)
    assert any("order-query" in p and "ORDER_COMMAND_URL" in p for p in problems)


def test_a_secret_setting_given_in_a_config_map_is_found() -> None:
    def in_the_clear(obj: Obj) -> None:
        env = container(obj)["env"]
        container(obj)["env"] = [e for e in env if e["name"] != "REDIS_URL"]
        container(obj)["env"].append({"name": "REDIS_URL", "value": "redis://redis:6379/0"})

    problems = checks.settings(
        edited(DEV, "Deployment", "order-query", in_the_clear), production=False
    )
    assert any("REDIS_URL from no Secret" in problem for problem in problems)


def test_a_secret_committed_for_production_is_found() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "leak"}, "data": {}}
    problems = checks.settings([*PRODUCTION, secret], production=True)
    assert "Secret/leak: no secret is committed for production" in problems


def test_a_command_that_is_not_a_process_of_ours_is_found() -> None:
    def other_command(obj: Obj) -> None:
        container(obj)["command"] = ["order-query", "rebuild"]

    problems = checks.commands(edited(DEV, "Deployment", "order-query", other_command))
    assert any("`order-query serve` should run in order-query" in p for p in problems)
    assert any("runs `order-query rebuild`: not a process of ours" in p for p in problems)


def test_a_gateway_upstream_without_its_service_is_found() -> None:
    def renamed(obj: Obj) -> None:
        obj["metadata"]["name"] = "queries"

    problems = checks.gateway_config(edited(DEV, "Service", "order-query", renamed), "nginx:1.28")
    assert any("upstream order-query:8003 is no Service port" in p for p in problems)


@pytest.mark.parametrize("kind,name", [("Deployment", "gateway"), ("Job", "auth-migrate")])
def test_a_pod_that_may_run_as_root_is_found(kind: str, name: str) -> None:
    def as_root(obj: Obj) -> None:
        obj["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0

    assert checks.hardening(edited(DEV, kind, name, as_root)) == [f"{kind}/{name} may run as root"]


def test_the_servers_images_must_be_composes() -> None:
    def newer(obj: Obj) -> None:
        container(obj)["image"] = "postgres:17"

    problems = checks.images(edited(DEV, "StatefulSet", "postgres", newer), ["postgres:16"])
    assert problems == [
        "StatefulSet/postgres container postgres runs postgres:17; compose runs postgres:16"
    ]


def test_a_url_setting_naming_a_path_the_service_does_not_serve_is_found() -> None:
    config = next(o for o in DEV if o["kind"] == "ConfigMap")
    moved = "http://auth:8001/auth/no-such-token-route"
    broken = edited(
        DEV,
        "ConfigMap",
        config["metadata"]["name"],
        lambda c: c["data"].update(AUTH_TOKEN_URL=moved),
    )
    problems = checks.addresses(broken)
    assert any("AUTH_TOKEN_URL: auth serves no /auth/no-such-token-route" in p for p in problems)
    assert checks.addresses(DEV) == []


def test_a_relay_is_probed_on_its_own_port_for_what_its_own_app_serves() -> None:
    def on_the_services_port(obj: Obj) -> None:
        container(obj)["readinessProbe"]["httpGet"]["port"] = 8001

    problems = checks.probes(edited(DEV, "Deployment", "auth-relay", on_the_services_port))
    assert any("port 8001; it listens on 8011" in problem for problem in problems)

    def on_a_route_of_the_service(obj: Obj) -> None:
        container(obj)["startupProbe"]["httpGet"]["path"] = "/auth/.well-known/jwks.json"

    problems = checks.probes(edited(DEV, "Deployment", "auth-relay", on_a_route_of_the_service))
    assert any("/auth/.well-known/jwks.json is not served" in problem for problem in problems)


def test_a_relay_that_does_not_wait_for_its_migration_is_found() -> None:
    def no_wait(obj: Obj) -> None:
        obj["spec"]["template"]["spec"]["initContainers"] = []

    problems = checks.waits_for_migrations(
        edited(DEV, "Deployment", "order-command-relay", no_wait)
    )
    assert problems == ["order-command-relay does not wait for its migration"]


def test_a_relay_the_gateway_cannot_find_by_its_service_is_found() -> None:
    def renamed(obj: Obj) -> None:
        obj["metadata"]["name"] = "relay"

    problems = checks.gateway_config(edited(DEV, "Service", "auth-relay", renamed), "nginx:1.28")
    assert any("upstream auth-relay:8011 is no Service port" in p for p in problems)
