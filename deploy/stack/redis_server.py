"""A Redis server of its own (for a test, the fault suite, a benchmark): its own process on its
own port, nothing kept on disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from deploy.stack.launcher import spawn
from deploy.stack.stopping import stop

START_WITHIN = 10.0


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def private_redis(port: int, run_dir: Path) -> Iterator[str | None]:
    """The URL of a fresh redis-server on 127.0.0.1:`port`, stopped after; None where
    redis-server is not installed (the caller then shares the session's Redis)."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    if _accepts(port):
        raise RuntimeError(f"port {port} is taken: is another run's Redis still up?")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "redis.log"
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly"]
    argv += ["no", "--dir", str(run_dir), "--logfile", str(log)]
    server = spawn(argv, os.environ, subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_WITHIN
        while not _accepts(port):
            if server.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"redis-server on port {port} did not start:\n{text[-3000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop([(server, signal.SIGTERM)], grace=10)
