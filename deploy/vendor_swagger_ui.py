"""Vendor Swagger UI for the gateway's docs page, so it works offline and loads nothing from a
CDN: `python deploy/vendor_swagger_ui.py 5.35.0`.

Fetches swagger-ui-dist at that version from the npm registry, checks the tarball against the
integrity (sha512) the registry publishes for it, and writes the few files the page uses into
deploy/nginx/vendor/swagger-ui-dist/ with VENDORED.json: the version, the tarball's integrity,
and each file's sha384, which the rendered page puts in its `integrity` attributes and a unit
test checks the files against.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

TARGET = Path(__file__).resolve().parent / "nginx" / "vendor" / "swagger-ui-dist"
REGISTRY = "https://registry.npmjs.org/swagger-ui-dist"
FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui-bundle.js.LICENSE.txt",
    "swagger-ui.css",
    "LICENSE",
    "NOTICE",
)


def sri(data: bytes, algorithm: str = "sha384") -> str:
    return f"{algorithm}-{base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def main(version: str) -> int:
    with urllib.request.urlopen(f"{REGISTRY}/{version}", timeout=30) as answer:  # noqa: S310
        dist = json.load(answer)["dist"]
    with urllib.request.urlopen(dist["tarball"], timeout=60) as answer:  # noqa: S310
        tarball = answer.read()
    if sri(tarball, "sha512") != dist["integrity"]:
        print(f"error: the tarball does not match the registry's {dist['integrity']}")
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    hashes = {}
    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        for name in FILES:
            member = archive.extractfile(f"package/{name}")
            assert member is not None, name
            data = member.read()
            (TARGET / name).write_bytes(data)
            hashes[name] = sri(data)
    manifest = {
        "package": "swagger-ui-dist",
        "version": version,
        "tarball": dist["tarball"],
        "integrity": dist["integrity"],
        "files": hashes,
    }
    (TARGET / "VENDORED.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"swagger-ui-dist {version} vendored into {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "5.35.0"))
