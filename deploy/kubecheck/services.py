"""What the schema cannot know, read from the services themselves: which command each process
runs (deploy/processes.toml), the routes each one serves (a service's app for `serve`, its
event log relay's for `relay`), the settings each one reads."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from deploy.stack.config import Migration, Service, load_processes
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.routing import Match

from shared.settings import ServiceSettings

# Where the gateway renderer finds the processes; nothing here depends on the values.
PLACEHOLDER_ENV = {
    f"{prefix}_{part}": "0" if part == "PORT" else "x"
    for prefix in (
        "AUTH",
        "AUTH_RELAY",
        "ORDER_COMMAND",
        "ORDER_COMMAND_RELAY",
        "ORDER_QUERY",
        "STATUS_WORKER",
    )
    for part in ("HOST", "PORT")
} | {"STACK_PROCESSES": "1"}


@dataclass(frozen=True)
class Program:
    """One console script of the platform (`auth-service`): its package and settings."""

    script: str
    package: str

    @property
    def settings(self) -> type[ServiceSettings]:
        module = importlib.import_module(f"{self.package}.settings")
        found = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, ServiceSettings) and cls.__module__ == module.__name__
        ]
        if len(found) != 1:
            raise ValueError(f"{module.__name__} holds {len(found)} settings classes, not one")
        return found[0]

    def setting_names(self) -> set[str]:
        return {field.upper() for field in self.settings.model_fields}

    def secret_names(self) -> set[str]:
        fields = self.settings.model_fields.items()
        return {name.upper() for name, field in fields if field.annotation is SecretStr}

    def serves(self, path: str, method: str = "GET", command: str = "serve") -> bool:
        """The app `command` runs (`serve`: the service's; `relay`: its event log relay's)
        answers `method path` with a route of its own (the app is built, never started: no
        I/O). The app's own router decides, included routers and all; with method "*", a
        route of that path for any method will do."""
        app = _relay_app(self.package) if command == "relay" else _app(self.package)
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}
        wanted = {Match.FULL, Match.PARTIAL} if method == "*" else {Match.FULL}
        return any(route.matches(scope)[0] in wanted for route in app.router.routes)


@cache
def _app(package: str) -> FastAPI:
    app: FastAPI = importlib.import_module(f"{package}.main").create_app()
    return app


@cache
def _relay_app(package: str) -> FastAPI:
    from shared.event_log.serving import relay_app

    cli = importlib.import_module(f"{package}.cli").CLI
    if cli.database is None or cli.relay_address is None:
        raise ValueError(f"{cli.prog} has no event log to relay")
    settings = cli.settings()
    return relay_app(settings, name=cli.service, database_url=cli.database(settings))


@cache
def program(script: str) -> Program:
    found = [ep for ep in entry_points(group="console_scripts") if ep.name == script]
    if not found:
        raise ValueError(f"{script} is not a console script of the platform")
    return Program(script, found[0].module.split(".", 1)[0])


def processes() -> tuple[list[Migration], list[Service]]:
    listed = load_processes(PLACEHOLDER_ENV)
    return listed.migrations, listed.services


def k8s_name(process: str) -> str:
    """A process's Kubernetes name: `order_command` is `order-command` (DNS-1035 labels)."""
    return process.replace("_", "-")
