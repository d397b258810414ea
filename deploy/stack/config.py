"""The settings (the environment over `.env`) and what deploy/processes.toml says to run."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "deploy" / "processes.toml"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; one pair of quotes stripped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_env(root: Path = ROOT) -> dict[str, str]:
    """What every child sees: `.env`, the environment over it, the venv's bin first on PATH."""
    env = {**read_dotenv(root / ".env"), **os.environ}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])
    return env


def run_dir(env: Mapping[str, str]) -> Path:
    """Where a stack keeps its rendered gateway and files: STACK_RUN_DIR (default `.run`), from
    the repository's root; an absolute one stays as it is."""
    return ROOT / env.get("STACK_RUN_DIR", ".run")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Fill `${VAR}` from `env`; a name that is not set is an error that names it."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ValueError(f"{name} is not set (needed by {text!r})")
        return env[name]

    return _PLACEHOLDER.sub(value, text)


@dataclass(frozen=True)
class Migration:
    name: str
    argv: list[str]


# The processes of one service listen on its port, then on that port plus 100, plus 200...
PORT_STRIDE = 100


def client_address(host: str, port: int) -> str:
    """host:port for a client; a wildcard bind address is reached on loopback."""
    host = host or "127.0.0.1"
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            host = "::1" if ":" in host else "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Process:
    """One process of a service: `auth.1`, `auth.2`, ...; it reads its port from
    `port_setting`, which the runner sets for it."""

    name: str
    port: int
    address: str


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    host: str
    port: int
    openapi: bool = True  # `openapi = false` in processes.toml: no /openapi.json to show
    processes: int = 1  # `processes = "${STACK_PROCESSES}"`: how many run, each on its port
    port_setting: str = ""  # the setting the service reads its port from (AUTH_PORT)

    @property
    def address(self) -> str:
        """The first process's address."""
        return client_address(self.host, self.port)

    def each(self) -> list[Process]:
        """Every process of the service, with the port each listens on."""
        ports = [self.port + n * PORT_STRIDE for n in range(self.processes)]
        return [
            Process(f"{self.name}.{n}", port, client_address(self.host, port))
            for n, port in enumerate(ports, 1)
        ]


@dataclass(frozen=True)
class Processes:
    migrations: list[Migration]
    services: list[Service]


def _setting_of(template: str) -> str:
    """`AUTH_PORT` of `${AUTH_PORT}`; "" for a port written as a number."""
    match = _PLACEHOLDER.fullmatch(template.strip())
    return match.group(1) if match else ""


def load_processes(env: Mapping[str, str], path: Path = PROCESSES) -> Processes:
    with path.open("rb") as file:
        data = tomllib.load(file)

    def argv(command: str) -> list[str]:
        return [expand(word, env) for word in shlex.split(command)]

    migrations = [Migration(m["name"], argv(m["command"])) for m in data.get("migrations", [])]
    services = [
        Service(
            name=s["name"],
            argv=argv(s["command"]),
            host=expand(str(s["host"]), env),
            port=int(expand(str(s["port"]), env)),
            openapi=bool(s.get("openapi", True)),
            processes=int(expand(str(s.get("processes", 1)), env)),
            port_setting=_setting_of(str(s["port"])),
        )
        for s in data.get("services", [])
    ]
    for service in services:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", service.name):
            raise ValueError(f"service name {service.name!r}: use lower case, digits and _")
        if not 1 <= service.processes <= 8:
            raise ValueError(f"{service.name}: 1 to 8 processes, not {service.processes}")
        if service.processes > 1 and not service.port_setting:
            raise ValueError(f"{service.name}: several processes need its port as ${{SETTING}}")
    return Processes(migrations, services)
