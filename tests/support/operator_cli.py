"""A service's command line, run as an operator runs it, against the test's servers."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.support.servers import Servers

ROOT = Path(__file__).resolve().parents[2]


async def order_query_cli(servers: Servers, *args: str) -> str:
    """`order-query ARGS...`; its output, once it has exited 0 (a failure shows the output)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "order_query.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, "RABBITMQ_URL": servers.rabbitmq},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, output.decode()
    return output.decode()
