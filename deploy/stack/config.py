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


@dataclass(frozen=True)
class Service:
    name: str
    argv: list[str]
    host: str
    port: int
    openapi: bool = True  # `openapi = false` in processes.toml: no /openapi.json to show

    @property
    def address(self) -> str:
        """host:port for a client; a wildcard bind address is reached on loopback."""
        host = self.host or "127.0.0.1"
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_unspecified:
                host = "::1" if ":" in host else "127.0.0.1"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass(frozen=True)
class Processes:
    migrations: list[Migration]
    services: list[Service]


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
        )
        for s in data.get("services", [])
    ]
    for service in services:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", service.name):
            raise ValueError(f"service name {service.name!r}: use lower case, digits and _")
    return Processes(migrations, services)
