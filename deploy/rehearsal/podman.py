"""podman and podman-compose as the rehearsal calls them: with its settings file, its project
name and files, and the published ports it chose."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_LABEL = "io.podman.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class Podman:
    env: Mapping[str, str]

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args],
            env=dict(self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip() or done.stdout}")
        return done

    def ok(self, *args: str, timeout: float = 120) -> bool:
        return self.run(*args, timeout=timeout, check=False).returncode == 0

    def lines(self, *args: str) -> list[str]:
        return [line for line in self.run(*args).stdout.splitlines() if line.strip()]

    def inspect(self, name: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(self.run("inspect", name).stdout)
        return found[0]


@dataclass(frozen=True)
class Compose:
    """podman-compose over the project's compose files, as project `project`."""

    podman: Podman
    executable: str
    project: str
    files: Sequence[Path]
    variables: Mapping[str, str] = field(default_factory=dict)  # compose's own ${...}
    build_args: str = ""  # what `podman build` gets besides

    def __call__(self, *args: str, timeout: float = 300) -> None:
        command = [self.executable, "--in-pod", "false", "-p", self.project]
        for file in self.files:
            command += ["-f", str(file)]
        if self.build_args:
            command.append(f"--podman-build-args={self.build_args}")
        done = subprocess.run(
            [*command, *args],
            env={**self.podman.env, **self.variables},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"podman-compose {' '.join(args)} exited {done.returncode}:\n"
                f"{_tail(done.stdout + done.stderr)}"
            )

    def containers(self, service: str | None = None) -> list[str]:
        """The names of this project's containers (of one service), running or not."""
        filters = ["--filter", f"label={PROJECT_LABEL}={self.project}"]
        if service is not None:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        return sorted(self.podman.lines("ps", "--all", *filters, "--format", "{{.Names}}"))

    def leftovers(self) -> list[str]:
        """What of this project is still on the machine: containers, volumes, networks, pods."""
        label = f"label={PROJECT_LABEL}={self.project}"
        found = [f"container {name}" for name in self.containers()]
        volumes = self.podman.lines("volume", "ls", "--filter", label, "--format", "{{.Name}}")
        found += [f"volume {name}" for name in volumes]
        found += [
            f"network {name}"
            for name in self.podman.lines("network", "ls", "--format", "{{.Name}}")
            if name == f"{self.project}_default"
        ]
        found += [
            f"pod {name}"
            for name in self.podman.lines("pod", "ps", "--format", "{{.Name}}")
            if name == f"pod_{self.project}"
        ]
        return found


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])
