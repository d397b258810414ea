"""The compose files as the rehearsal reads them: docker-compose.yml, and the layer it adds
(deploy/compose-check.yml), whose `!reset` tags (Compose's own) plain YAML does not know."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from deploy.stack.config import read_dotenv

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CHECK_LAYER = ROOT / "deploy" / "compose-check.yml"
RESET = "!reset"  # what a `!reset` value reads as


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!reset", lambda _loader, _node: RESET)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    return data


def container_env(compose: dict[str, Any], service: str, *layers: dict[str, Any]) -> dict[str, str]:
    """What a container of `service` sees: .env when it is its env_file, then its
    `environment`, then each layer's `environment` for it."""
    definition = compose["services"][service]
    env = read_dotenv(ROOT / ".env") if definition.get("env_file") == ".env" else {}
    for source in [definition, *(layer["services"].get(service, {}) for layer in layers)]:
        env |= {key: str(value) for key, value in (source.get("environment") or {}).items()}
    return env


def credentials(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")
