"""What the rehearsal runs on: podman with runc, debootstrap and podman-compose, installed where
they are missing, and podman's settings for this machine in a file of the rehearsal's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Debian's packages, each with a file that says it is there. netavark and aardvark-dns give
# the compose network its names, and netavark sets the network up with iptables (without it,
# a container does not start: "netavark: No such file or directory"); catatonit is podman's
# `init: true`.
APT_PACKAGES = {
    "podman": "/usr/bin/podman",
    "runc": "/usr/sbin/runc",
    "catatonit": "/usr/libexec/podman/catatonit",
    "netavark": "/usr/lib/podman/netavark",
    "aardvark-dns": "/usr/lib/podman/aardvark-dns",
    "iptables": "/usr/sbin/iptables",
    "debootstrap": "/usr/sbin/debootstrap",
}
# crun fails on this kind of machine's cgroups, and podman's default ulimits cannot be set
# inside its sandbox: runc, and no ulimits but the ones the containers inherit.
CONTAINERS_CONF = """\
# Written by deploy/rehearsal/tools.py for `make compose-check`; podman reads it through
# CONTAINERS_CONF, so the machine's own /etc/containers is left alone.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
"""


def missing_packages() -> list[str]:
    return [name for name, path in APT_PACKAGES.items() if not Path(path).exists()]


def install_packages() -> None:
    """apt-get the missing packages (as root; otherwise say the command and stop)."""
    missing = missing_packages()
    if not missing:
        return
    packages = " ".join(missing)
    command = f"apt-get update -qq && apt-get install -y -qq --no-install-recommends {packages}"
    if os.geteuid() != 0:
        raise SystemExit(f"missing: {', '.join(missing)}. Install them as root:  {command}")
    print(f"installing {', '.join(missing)}:  {command}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["sh", "-c", command], env=env, check=True, timeout=900)
    if still := missing_packages():
        raise SystemExit(f"apt-get did not install {', '.join(still)}")


def podman_compose() -> str:
    """podman-compose from the project's locked dev environment (the venv running us)."""
    beside = Path(sys.executable).parent / "podman-compose"
    found = str(beside) if beside.exists() else shutil.which("podman-compose")
    if found is None:
        raise SystemExit("podman-compose is missing: run `make deps` (it is a dev dependency)")
    return found


def podman_env(run_dir: Path) -> dict[str, str]:
    """The environment every podman call of the rehearsal gets: its own containers.conf."""
    run_dir.mkdir(parents=True, exist_ok=True)
    conf = run_dir / "containers.conf"
    conf.write_text(CONTAINERS_CONF, encoding="utf-8")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}
