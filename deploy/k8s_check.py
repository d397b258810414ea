"""deploy/k8s checked without a cluster: `make k8s-check` (docs/kubernetes.md).

Renders every overlay with kustomize (kubectl's, from the dev dependencies), validates each
object against the Kubernetes schemas (strictly, for the oldest and newest versions meant),
then checks what the schemas cannot: the commands are deploy/processes.toml's, the probes hit
paths the services serve on the ports they listen on, the URLs of the platform's own
services in the settings name ports and paths that exist, every setting a service reads is given
to it (secrets from Secrets; none committed for production), the gateway's config renders from
make run's templates onto the Services, selectors and ports meet, every pod is non-root with
requests and limits, and the servers' images are docker-compose.yml's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.kubecheck import checks, manifests, schema
from deploy.stack.config import ROOT


def compose_images() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return {name: s["image"] for name, s in compose["services"].items() if "build" not in s}


def check(objects: list[manifests.Obj], production: bool) -> list[str]:
    images = compose_images()
    return [
        *schema.problems(objects),
        *checks.commands(objects),
        *checks.waits_for_migrations(objects),
        *checks.probes(objects),
        *checks.addresses(objects),
        *checks.settings(objects, production=production),
        *checks.gateway_config(objects, images["gateway"]),
        *checks.wiring(objects),
        *checks.hardening(objects),
        *checks.images(objects, images.values()),
    ]


def main() -> int:
    failed = False
    for overlay in manifests.overlays():
        where = overlay.relative_to(ROOT)
        objects: list[manifests.Obj] = []
        try:
            objects = manifests.render(overlay)
            problems = check(objects, production=overlay.name == "production")
        except ValueError as exc:
            problems = [str(exc)]
        if problems:
            failed = True
            print(f"FAILED: {where}:")
            print("\n".join(f"  {problem}" for problem in problems))
        else:
            versions = " and ".join(schema.VERSIONS)
            print(f"ok: {where}: {len(objects)} objects, valid for Kubernetes {versions}, checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
