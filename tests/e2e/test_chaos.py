"""The fault suite's short run (chaos/, `make chaos` runs the long one): one fault of each kind
against a private stack under a steady workload, then every invariant checked, and each run
once against data corrupted for it, where it must fail."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from deploy.stack.config import ROOT


@pytest.mark.timeout(900)
async def test_one_fault_of_each_kind_loses_nothing_and_the_suite_catches_what_it_should() -> None:
    run = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chaos",
        "--short",
        # 8000 above the e2e stacks' ports: two checkouts testing at once keep apart
        "--port-base",
        str(int(os.environ.get("E2E_PORT_BASE", "18000")) + 8000),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await run.communicate()
    report = output.decode(errors="replace")
    sys.stdout.write(report)  # the figures, in the test's output (pytest -s, or a failure)
    assert run.returncode == 0, report[-8000:]
