"""A private RabbitMQ node, for a test (or the fault suite) that must stop and start its broker.

The machine's RabbitMQ is shared with other work and is never restarted by a test. This node
is the test's own: its own node name, AMQP and distribution ports, data and log directories
under a temporary directory, its own Erlang cookie (HOME) and no plugins (so no management
port to clash with). It registers with the machine's epmd like any other node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import aio_pika
from deploy.stack.launcher import spawn
from deploy.stack.stopping import stop

START_WITHIN = 90.0  # seconds
STOP_WITHIN = 60.0
SERVER_ENV = "RABBITMQ_SERVER"  # the path of a rabbitmq-server script, where it is elsewhere


def find_server() -> Path:
    """The rabbitmq-server script that runs the node as the current user.

    Debian's /usr/sbin/rabbitmq-server is a wrapper that switches to the rabbitmq user; the
    script it wraps sits beside the wrapper's target, in /usr/lib/rabbitmq/bin.
    """
    candidates = [os.environ.get(SERVER_ENV), shutil.which("rabbitmq-server")]
    candidates.append("/usr/lib/rabbitmq/bin/rabbitmq-server")
    for candidate in filter(None, candidates):
        path = Path(candidate).resolve()
        if path.name == "rabbitmq-script-wrapper":
            path = path.with_name("rabbitmq-server")
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise RuntimeError(
        "No rabbitmq-server found (looked at $RABBITMQ_SERVER, rabbitmq-server on PATH and "
        "/usr/lib/rabbitmq/bin/rabbitmq-server): this test starts a private RabbitMQ node "
        "to stop and start. Install it (`apt-get install -y rabbitmq-server`) or set "
        f"{SERVER_ENV} to its rabbitmq-server script."
    )


def free_port() -> int:
    """A port nothing listens on, below the kernel's range for outgoing connections (32768
    and up here), so that none takes it between now and when a server (re)binds it."""
    for _ in range(100):
        port = random.randrange(21_000, 32_000)  # noqa: S311 (a port to try, not a secret)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 21000 and 32000")


class RabbitNode:
    """`await start()`, `await stop()`, again as often as the test likes; `url` reaches it."""

    def __init__(self, directory: Path) -> None:
        self.server = find_server()
        self.directory = directory
        self.port = free_port()
        self.dist_port = free_port()
        self.name = f"test-{os.getpid()}-{self.port}@localhost"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "node.log"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        d = self.directory
        return {
            **os.environ,
            "HOME": str(d),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),  # none: not the machine's
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    async def start(self) -> float:
        """Start the node; return the seconds until it took an AMQP connection."""
        began = time.monotonic()
        with self.log.open("ab") as log:
            self.process = spawn([str(self.server)], self._env(), log, cwd=self.directory)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"RabbitMQ node exited ({self.process.returncode}): {self.tail()}"
                )
            if await self._listening():  # no AMQP attempts (each logs an error) before that
                with contextlib.suppress(Exception):
                    connection = await aio_pika.connect(self.url, timeout=2)
                    await connection.close()
                    return time.monotonic() - began
            if time.monotonic() - began > START_WITHIN:
                raise RuntimeError(f"RabbitMQ node not up within {START_WITHIN:g} s: {self.tail()}")
            await asyncio.sleep(0.2)

    async def stop(self) -> float:
        """Stop the node the way a service manager does (SIGTERM: a clean shutdown); return the
        seconds it took."""
        began = time.monotonic()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return 0.0
        await asyncio.to_thread(stop, [(process, signal.SIGTERM)], STOP_WITHIN)
        return time.monotonic() - began

    async def ctl(self, *args: str) -> str:
        """`rabbitmqctl -n <this node> ARGS`: its output (raises if it fails)."""
        ctl = self.server.with_name("rabbitmqctl")
        process = await asyncio.create_subprocess_exec(
            str(ctl),
            "-n",
            self.name,
            *args,
            env=self._env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {err.decode(errors='replace')}")
        return out.decode()

    @property
    def pgid(self) -> int:
        """The node's process group (its session: the Erlang VM and its helpers)."""
        assert self.process is not None, "the node is not running"
        return self.process.pid

    async def _listening(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""
