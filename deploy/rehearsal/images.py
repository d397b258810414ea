"""The images the compose file needs and no registry here serves: Debian's own packages, built
into stand-ins under the same names (deploy/standins/README.md), and reused while their
sources are unchanged. An image of that name that is no stand-in (pulled from the real
registry) is used as it is."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deploy.rehearsal.podman import Podman

ROOT = Path(__file__).resolve().parents[2]
STANDINS = ROOT / "deploy" / "standins"
BASE = "debian:bookworm-slim"
MIRROR = "http://deb.debian.org/debian"
LABEL = "io.orders-platform.stand-in"  # its value: the fingerprint of the stand-in's sources
MACHINE_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def qualified(image: str) -> str:
    """`postgres:16` as podman stores it: docker.io/library/postgres:16."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    if "." in first or ":" in first or first == "localhost":
        return image
    return f"docker.io/{image}"


def folder(image: str) -> Path:
    """The stand-in of `postgres:16` is deploy/standins/postgres."""
    return STANDINS / image.rsplit("/", 1)[-1].split(":", 1)[0]


def pulled_images(compose: Mapping[str, Any], dockerfile: str) -> list[str]:
    """What `docker compose up --build` (without profiles) would pull: the servers' images
    and the Dockerfile's base image."""
    images = {
        service["image"]
        for service in compose["services"].values()
        if "build" not in service and not service.get("profiles")
    }
    images |= set(re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE))
    return sorted(images)


def fingerprint(*folders: Path, extra: bytes = b"") -> str:
    digest = hashlib.sha256(extra)
    for top in folders:
        for path in sorted(p for p in top.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(STANDINS)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _label(podman: Podman, image: str) -> str | None:
    """The stand-in label of a local image: None when there is no such image, "" when it is
    not a stand-in."""
    if not podman.ok("image", "exists", image):
        return None
    labels = podman.inspect(image).get("Config", {}).get("Labels") or {}
    return str(labels.get(LABEL, ""))


def ensure_base(podman: Podman, cache: Path) -> str:
    """debian:bookworm-slim from `debootstrap --variant=minbase`, trimmed as the slim image is."""
    image, wanted = qualified(BASE), fingerprint(STANDINS / "debian")
    have = _label(podman, image)
    if have == "" or have == wanted:
        return "kept" if have else "upstream"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        root = Path(work) / "root"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR],
            check=True,
            timeout=900,
            capture_output=True,
        )
        _trim(root)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        changes = [
            'CMD ["bash"]',
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"LABEL {LABEL}={wanted}",
        ]
        flags = [f"--change={change}" for change in changes]
        done = subprocess.run(
            ["podman", "import", *flags, "-", image],
            stdin=tar.stdout,
            env=dict(podman.env),
            capture_output=True,
            check=False,
            timeout=300,
        )
        tar.wait()
        if done.returncode != 0 or tar.returncode != 0:
            raise RuntimeError(f"podman import {image}: {done.stderr.decode(errors='replace')}")
    return "built"


def _trim(root: Path) -> None:
    """The slim image's dpkg and apt settings, and what they would have left out already."""
    debian = STANDINS / "debian"
    shutil.copyfile(debian / "slim.cfg", root / "etc/dpkg/dpkg.cfg.d/slim")
    shutil.copyfile(debian / "apt.conf", root / "etc/apt/apt.conf.d/slim")
    shutil.copyfile(debian / "sources.list", root / "etc/apt/sources.list")
    shutil.copyfile(debian / "policy-rc.d", root / "usr/sbin/policy-rc.d")
    (root / "usr/sbin/policy-rc.d").chmod(0o755)
    for path in (root / "usr/share/doc").rglob("*"):
        if path.is_file() and path.name != "copyright":
            path.unlink()
    for gone in ("usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists"):
        for path in (root / gone).glob("*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    leftovers = [
        *(root / "var/cache/apt").glob("*.bin"),
        *(root / "var/cache/apt/archives").glob("*.deb"),  # debootstrap's downloads
        *(root / "var/log").glob("*.log"),
    ]
    for path in leftovers:
        path.unlink()


def ensure_standin(podman: Podman, image: str) -> str:
    """Build the stand-in for `image` unless one from the same sources (or the real image) is
    there. The machine's trust store goes in as a build-time mount: see python/Containerfile."""
    source = folder(image)
    if not (source / "Containerfile").is_file():
        raise RuntimeError(f"no stand-in for {image}: add {source.relative_to(ROOT)}/Containerfile")
    ca = MACHINE_CA.read_bytes() if MACHINE_CA.is_file() else b""
    wanted = fingerprint(STANDINS / "debian", source, extra=ca)
    name = qualified(image)
    have = _label(podman, name)
    if have == "" or have == wanted:
        return "kept" if have else "upstream"
    mounts = [f"--volume={MACHINE_CA}:/run/machine-ca.crt:ro"] if ca else []
    podman.run(
        "build",
        "--network=host",
        "--pull=never",
        f"--label={LABEL}={wanted}",
        *mounts,
        f"--tag={name}",
        str(source),
        timeout=900,
    )
    return "built"


def size(podman: Podman, name: str) -> str:
    """The image's size in bytes, as podman counts it (every layer)."""
    return podman.run("image", "inspect", "--format", "{{.Size}}", name).stdout.strip()
