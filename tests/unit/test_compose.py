"""docker-compose.yml, read as a file: there is no Docker engine where the tests run.

What compose's containers run is held to one source, deploy/processes.toml: here, each
compose service's command is the one processes.toml gives it; and tests/e2e starts those very
commands (`deploy/local_stack.py run` reads processes.toml) and drives them through a gateway
rendered from the templates compose renders too. What no test here can show is the image
building and the containers starting: docs/docker.md says how that was checked.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from deploy.stack import gateway, servers
from deploy.stack.config import load_processes, read_dotenv

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOTENV = read_dotenv(ROOT / ".env")
PROCESS_LIST = load_processes(DOTENV)
MIGRATIONS = {m.name: m for m in PROCESS_LIST.migrations}
APP_SERVICES = {s.name: s for s in PROCESS_LIST.services}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# What each service needs before it starts: its servers and the services it calls, healthy;
# its database migrated. Compose has to say the same.
NEEDS_HEALTHY = {
    "auth": {"postgres", "rabbitmq"},
    "order_command": {"postgres", "rabbitmq", "auth"},
    "order_query": {"redis", "rabbitmq", "auth", "order_command"},
    "status_worker": {"rabbitmq"},
    "auth_relay": {"postgres", "rabbitmq"},
    "order_command_relay": {"postgres", "rabbitmq"},
    "gateway": {
        "auth",
        "order_command",
        "order_query",
        "status_worker",
        "auth_relay",
        "order_command_relay",
        "gateway_metrics",
    },
    "auth-migrate": {"postgres"},
    "orders-migrate": {"postgres"},
}
NEEDS_COMPLETED = {
    "auth": {"auth-migrate"},
    "order_command": {"orders-migrate"},
    "auth_relay": {"auth-migrate"},
    "order_command_relay": {"orders-migrate"},
    "gateway": {"gateway-config"},
}


def container_env(name: str) -> dict[str, str]:
    """What a container sees: its env_file (.env), then its `environment` over it."""
    service = SERVICES[name]
    env = DOTENV.copy() if service.get("env_file") == ".env" else {}
    return env | {key: str(value) for key, value in service.get("environment", {}).items()}


def dependencies(name: str, condition: str) -> set[str]:
    return {
        dependency
        for dependency, how in SERVICES[name].get("depends_on", {}).items()
        if how["condition"] == condition
    }


def test_the_compose_file_is_valid_by_the_compose_specification() -> None:
    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    errors = [
        f"{error.json_path}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(COMPOSE)
    ]
    assert errors == []


def test_the_schema_refuses_a_misspelt_key() -> None:
    schema = json.loads((ROOT / "deploy" / "compose-spec.json").read_text())
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["auth"]["depends"] = broken["services"]["auth"].pop("depends_on")
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


@pytest.mark.parametrize("name", [*MIGRATIONS, *APP_SERVICES])
def test_compose_runs_each_process_with_the_command_processes_toml_gives_it(name: str) -> None:
    seen_there = load_processes(container_env(name))
    argv = {m.name: m.argv for m in seen_there.migrations} | {
        s.name: s.argv for s in seen_there.services
    }
    assert SERVICES[name]["command"] == argv[name]


def test_compose_runs_no_process_that_processes_toml_does_not_list() -> None:
    from_the_image = {
        name
        for name, service in SERVICES.items()
        if service.get("image") == "orders-platform:local"
    }
    # The gateway's own two: its config's renderer, and its metrics process (the command
    # `make run`'s deploy/local_stack.py starts for it).
    assert from_the_image == {*MIGRATIONS, *APP_SERVICES, "gateway-config", "gateway_metrics"}


@pytest.mark.parametrize("name", sorted(NEEDS_HEALTHY))
def test_each_container_waits_for_what_it_needs(name: str) -> None:
    assert dependencies(name, "service_healthy") == NEEDS_HEALTHY[name]
    assert dependencies(name, "service_completed_successfully") == NEEDS_COMPLETED.get(name, set())


def test_every_migration_finishes_before_a_service_that_uses_its_database() -> None:
    waited_for = {
        migration
        for name in APP_SERVICES
        for migration in dependencies(name, "service_completed_successfully")
    }
    assert waited_for == set(MIGRATIONS)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_each_service_listens_where_its_healthcheck_and_the_gateway_look(name: str) -> None:
    own = next(s for s in load_processes(container_env(name)).services if s.name == name)
    assert own.host == "0.0.0.0", "in its container, a service listens on every interface"  # noqa: S104
    probe = SERVICES[name]["healthcheck"]["test"]
    assert f"http://127.0.0.1:{own.port}/readyz" in " ".join(probe)
    seen_by_gateway = load_processes(container_env("gateway-config")).services
    assert next(s for s in seen_by_gateway if s.name == name).address == f"{name}:{own.port}"


@pytest.mark.parametrize("name", sorted({*MIGRATIONS, *APP_SERVICES, "gateway-config"}))
def test_no_container_looks_for_another_server_on_its_own_loopback(name: str) -> None:
    urls = {k: v for k, v in container_env(name).items() if re.search(r"_(URL|ENDPOINT)$", k)}
    assert {key for key, url in urls.items() if urlsplit(url).hostname in LOOPBACK} == set()


def test_the_gateway_config_is_rendered_by_make_runs_code_into_the_volume_nginx_reads() -> None:
    renderer, nginx = SERVICES["gateway-config"], SERVICES["gateway"]
    assert renderer["command"] == ["python", "deploy/local_stack.py", "gateway"]
    run_dir = container_env("gateway-config")["STACK_RUN_DIR"]
    assert f"gateway-config:{run_dir}" in renderer["volumes"]
    assert f"gateway-config:{run_dir}" in nginx["volumes"]
    conf = Path(run_dir) / "nginx" / "nginx.conf"
    expected = gateway.nginx_argv(conf)
    assert nginx["command"] == ["nginx", *expected[1:]]
    assert nginx["image"].startswith("nginx:")


def test_the_gateway_listens_on_the_port_compose_publishes() -> None:
    settings = gateway.settings(container_env("gateway-config"))  # valid, or it raises
    [port] = SERVICES["gateway"]["ports"]
    assert settings["GATEWAY_LISTEN"] == f"0.0.0.0:{port['target']}"
    assert _substituted(port["published"]) == DOTENV["GATEWAY_PORT"]
    assert _substituted(port["host_ip"]) == DOTENV["GATEWAY_HOST"]
    probe = SERVICES["gateway"]["healthcheck"]["test"]
    assert f"http://127.0.0.1:{port['target']}/healthz" in probe


def _substituted(text: str) -> str:
    """Compose's ${VAR} and ${VAR:-default}, from the committed .env (the shell may override)."""
    return re.sub(
        r"\$\{(\w+)(?::-([^}]*))?\}",
        lambda m: DOTENV.get(m.group(1)) or m.group(2) or "",
        text,
    )


def test_every_variable_compose_substitutes_comes_from_the_committed_env() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    names = set(re.findall(r"\$\{(\w+)", text))
    assert names, "the gateway's published address comes from .env"
    assert names <= set(DOTENV)
    for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", text):
        assert DOTENV[name] == default, f"{name}: compose's default is not .env's"


def test_the_management_ui_and_the_trace_viewer_are_published_on_loopback() -> None:
    published = {
        (name, port["target"]): port
        for name, service in SERVICES.items()
        for port in service.get("ports", [])
    }
    assert {("rabbitmq", 15672), ("jaeger", 16686), ("jaeger", 4318)} <= set(published)
    assert published[("rabbitmq", 15672)]["host_ip"] == "127.0.0.1"
    assert published[("jaeger", 16686)]["host_ip"] == "127.0.0.1"


def test_every_long_running_container_but_the_optional_viewers_has_a_healthcheck() -> None:
    one_shots = {*MIGRATIONS, "gateway-config"}
    unchecked = {
        name
        for name, service in SERVICES.items()
        if name not in one_shots and "healthcheck" not in service
    }
    assert unchecked == {"jaeger", "prometheus", "grafana"}  # nothing waits for them


def test_state_lives_in_named_volumes() -> None:
    def mounts(name: str) -> dict[str, str]:
        pairs = (volume.split(":")[:2] for volume in SERVICES[name].get("volumes", []))
        return {target: source for source, target in pairs}

    key_dir = str(Path(container_env("auth")["AUTH_JWT_KEY_FILE"]).parent)
    assert mounts("postgres")["/var/lib/postgresql/data"] == "postgres-data"
    assert mounts("redis")["/data"] == "redis-data"
    assert mounts("rabbitmq")["/var/lib/rabbitmq"] == "rabbitmq-data"
    assert mounts("auth")[key_dir] == "auth-keys"
    sources = {source for name in SERVICES for source in mounts(name).values()}
    assert sources == set(COMPOSE["volumes"]), "named volumes only, each declared"


def test_rabbitmq_keeps_its_node_name_so_its_data_survives_a_recreated_container() -> None:
    assert SERVICES["rabbitmq"]["hostname"] == "rabbitmq"


def test_traces_go_to_jaeger_and_dashboards_come_only_with_their_profiles() -> None:
    with_profiles = {name: s["profiles"] for name, s in SERVICES.items() if "profiles" in s}
    assert with_profiles == {
        "jaeger": ["traces"],
        "prometheus": ["dashboards"],
        "grafana": ["dashboards"],
    }
    for name in APP_SERVICES:
        env = container_env(name)
        endpoint = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert (endpoint.hostname, endpoint.port) == ("jaeger", 4318)
        assert env["OTEL_TRACES_EXPORTER"] == "otlp"


def test_the_servers_are_the_images_make_run_starts_when_docker_is_there() -> None:
    images = {server.name.lower(): server.image for server in servers.SERVERS}
    assert {name: SERVICES[name]["image"] for name in images} == images


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_each_service_runs_as_many_replicas_as_make_run_runs_processes_of_it(name: str) -> None:
    """Two of each service behind the gateway (.env's STACK_PROCESSES); one of each event log
    relay, which processes.toml runs once."""
    replicas = APP_SERVICES[name].processes
    assert SERVICES[name]["deploy"] == {"mode": "replicated", "replicas": replicas}
    assert "container_name" not in SERVICES[name], "replicas cannot share a name"


def test_only_the_services_are_replicated() -> None:
    replicated = {name for name, service in SERVICES.items() if "deploy" in service}
    assert replicated == set(APP_SERVICES)
