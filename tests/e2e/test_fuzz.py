"""Schemathesis over each service's public OpenAPI document, through the gateway, with a real
user's token: whatever it generates (valid, invalid, NUL bytes, odd headers), no answer is a 5xx,
and every answer is one the document declares, shaped as it says."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.accounts import Account, sign_up

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
EXAMPLES = 25  # per operation and phase: the three documents in about a minute here
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture
async def fuzz_user(gateway_url: str) -> AsyncIterator[Account]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as http:
        yield await sign_up(http)


@pytest.mark.parametrize("service", ["auth", "order_command", "order_query"])
async def test_fuzzing_finds_no_server_error_and_no_answer_off_the_document(
    gateway_url: str, fuzz_user: Account, service: str, tmp_path: Path
) -> None:
    run = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "run",
        f"{gateway_url}/openapi/{service}.json",
        f"--url={gateway_url}",
        f"--header=Authorization: {fuzz_user.http.headers['Authorization']}",
        f"--checks={CHECKS}",
        f"--max-examples={EXAMPLES}",
        "--phases=examples,coverage,fuzzing",
        "--generation-allow-x00=true",
        "--generation-database=none",
        "--request-timeout=10",
        # An event stream answers for as long as the client listens: no request of it ends.
        "--exclude-path=/orders/stream",
        "--no-color",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(run.communicate(), timeout=300)
    assert run.returncode == 0, output.decode(errors="replace")[-8000:]
