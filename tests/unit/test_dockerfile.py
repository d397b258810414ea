"""deploy/Dockerfile and .dockerignore, read as files (no Docker engine where the tests run)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
IGNORED = [
    line.strip()
    for line in (ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
Instruction = tuple[str, str]


def instructions(text: str) -> list[Instruction]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    found = []
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), " ".join(arguments.split())))
    return found


def stages() -> list[list[Instruction]]:
    split: list[list[Instruction]] = []
    for keyword, arguments in instructions(DOCKERFILE):
        if keyword == "FROM":
            split.append([])
        if split:
            split[-1].append((keyword, arguments))
    return split


BUILD, RUNTIME = stages()[0], stages()[-1]


def in_build_context(path: str) -> bool:
    """.dockerignore's verdict on `path`: the last pattern that matches it or a parent wins."""
    parents = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
    included = True
    for pattern in IGNORED:
        bare = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatchcase(parent, bare) for parent in parents):
            included = pattern.startswith("!")
    return included


def test_the_image_is_built_in_one_stage_and_run_from_another_that_is_not_root() -> None:
    assert len(stages()) >= 2
    assert ("COPY", "--from=build /app/.venv /app/.venv") in RUNTIME
    users = [arguments for keyword, arguments in RUNTIME if keyword == "USER"]
    assert users, "the runtime stage must name its user"
    assert users[-1] not in {"root", "0", "0:0"}


def test_the_image_installs_the_locked_workspace_without_the_dev_tools() -> None:
    syncs = [
        arguments for keyword, arguments in BUILD if keyword == "RUN" and "uv sync" in arguments
    ]
    assert syncs
    assert all("--frozen" in sync and "--no-dev" in sync for sync in syncs)
    assert "--no-editable" in syncs[-1], "the venv must stand alone, without the sources"
    assert any(k == "COPY" and "uv.lock" in arguments.split() for k, arguments in BUILD)


@pytest.mark.parametrize(
    "member", sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
)
def test_the_image_knows_every_workspace_member_before_it_installs_the_dependencies(
    member: str,
) -> None:
    copy = ("COPY", f"services/{member}/pyproject.toml services/{member}/")
    first_sync = next(i for i, (k, a) in enumerate(BUILD) if k == "RUN" and "uv sync" in a)
    assert copy in BUILD[:first_sync]


def test_the_image_never_downloads_an_interpreter() -> None:
    assert "UV_PYTHON_DOWNLOADS=never" in dict(BUILD).get("ENV", "")
    assert [a for k, a in RUNTIME if k == "RUN" and re.search(r"\buv\b", a)] == []
    assert "PATH=/app/.venv/bin:$PATH" in dict(RUNTIME)["ENV"]
    build_base, runtime_base = BUILD[0][1].split()[0], RUNTIME[0][1].split()[0]
    assert build_base == runtime_base, "the venv's interpreter must be the runtime's own"


def test_everything_the_dockerfile_copies_is_in_the_build_context() -> None:
    sources = [
        source
        for keyword, arguments in instructions(DOCKERFILE)
        if keyword == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    assert sources
    assert [source for source in sources if not in_build_context(source)] == []


@pytest.mark.parametrize("path", [".env", ".venv", ".run", "tests", "services/x/__pycache__"])
def test_settings_and_local_state_stay_out_of_the_image(path: str) -> None:
    assert not in_build_context(path)


def test_compose_builds_every_python_service_from_this_dockerfile() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    built = {
        name: service["build"]
        for name, service in compose["services"].items()
        if service.get("image") == "orders-platform:local"
    }
    assert built
    assert all(b == {"context": ".", "dockerfile": "deploy/Dockerfile"} for b in built.values())
