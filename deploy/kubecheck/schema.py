"""Each rendered object against the Kubernetes API's own schemas (the kubernetes-validate
package), strictly: a field the API does not have is an error, not ignored."""

from __future__ import annotations

import kubernetes_validate
from deploy.kubecheck.manifests import Obj, name

# The oldest Kubernetes the manifests are meant for (the preStop `sleep` action is GA in 1.32)
# and the newest whose schemas the package holds.
VERSIONS = ("1.32.0", "1.37.0")


def problems(objects: list[Obj], versions: tuple[str, ...] = VERSIONS) -> list[str]:
    found = []
    for obj in objects:
        for version in versions:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path)
                found.append(f"{name(obj)}: Kubernetes {version}: {path}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError as error:
                found.append(f"{name(obj)}: Kubernetes {version} has no such kind: {error}")
    return found
