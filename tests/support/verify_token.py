"""Run as a process of its own: verify the token on stdin knowing only the JWKS URL, as any
other service does. Prints `<user id> <role>`, or the refusal and exits 1."""

from __future__ import annotations

import asyncio
import sys

import httpx

from shared.failures import Failure
from shared.security import JwksKeys, TokenVerifier


async def main(jwks_url: str, token: str) -> int:
    async with httpx.AsyncClient() as client:
        verifier = TokenVerifier(
            JwksKeys(jwks_url, client), issuer="orders-platform-auth", audience="orders-platform"
        )
        try:
            principal = await verifier.verify(token)
        except Failure as exc:
            sys.stdout.write(f"refused: {exc.message}\n")
            return 1
    sys.stdout.write(f"{principal.user_id} {principal.role.value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.stdin.read().strip())))
