"""Benchmark `tokens`: access-token verifications per second, in process, on one core.

What every service does per request is `shared.security.TokenVerifier.verify` (here with
`StaticKeys`, so no JWKS fetch). It remembers good tokens for a while, so it is measured twice:
checking a token afresh (`remember_for=0`), and answering for a token it checked before. The
ceiling is the bare Ed25519 signature check of the same token's signing input with
`cryptography`; PyJWT's `decode` alone sits in between. All are measured in interleaved rounds
so that a busy moment of the machine hits them all.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jwt
from bench.measure import Rate, run_bounded, run_bounded_async
from bench.report import Section, table
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth_service.keys import SigningKey, load_signing_key
from auth_service.tokens import AccessTokenIssuer
from shared.events import Role
from shared.security import ALGORITHMS, StaticKeys, TokenVerifier

ISSUER = "bench-issuer"
AUDIENCE = "bench-audience"


@dataclass(frozen=True)
class Budget:
    rounds: int
    round_seconds: float
    round_count: int


FULL = Budget(rounds=7, round_seconds=1.0, round_count=200_000)
QUICK = Budget(rounds=2, round_seconds=0.3, round_count=50_000)


@dataclass(frozen=True)
class Candidate:
    label: str
    what: str
    call: Callable[[], object] | None = None
    acall: Callable[[], Awaitable[object]] | None = None  # a coroutine function: awaited


def _signing_key() -> SigningKey:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return load_signing_key(pem.decode(), Path("/nonexistent/unused.pem"))


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


FIRST_SIGHT = "TokenVerifier.verify, first sight"
REMEMBERED = "TokenVerifier.verify, remembered"


def verifier(key: SigningKey, *, remember: bool) -> TokenVerifier:
    """The services' verifier. It remembers good tokens (60 s by default); with
    `remember_for=0` every call checks the token afresh, as for a token seen the first time."""
    keys = StaticKeys(key.jwks)
    if remember:
        return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, remember_for=0.0)


def candidates(key: SigningKey, token: str) -> list[Candidate]:
    fresh, remembering = verifier(key, remember=False), verifier(key, remember=True)
    pyjwk = jwt.PyJWK.from_dict(key.public_jwk)
    public_key = key.private_key.public_key()
    signing_input, _, signature = token.rpartition(".")
    message, raw_signature = signing_input.encode("ascii"), _b64url(signature)

    def bare() -> None:
        public_key.verify(raw_signature, message)

    def pyjwt_decode() -> None:
        jwt.decode(
            token,
            pyjwk,
            algorithms=ALGORITHMS,
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti"]},
        )

    return [
        Candidate(
            "bare Ed25519 verify",
            "`Ed25519PublicKey.verify` of the token's signature over its signing input",
            call=bare,
        ),
        Candidate(
            "PyJWT decode",
            "`jwt.decode` with the key and the claim checks the verifier asks for",
            call=pyjwt_decode,
        ),
        Candidate(
            FIRST_SIGHT,
            "`shared.security.TokenVerifier.verify` with `StaticKeys`, `remember_for=0`: the "
            "whole check, as for a token the service has not seen",
            acall=lambda: fresh.verify(token),
        ),
        Candidate(
            REMEMBERED,
            "the same with its defaults, the same token again: a lookup of a token it checked "
            "before (not a verification)",
            acall=lambda: remembering.verify(token),
        ),
    ]


async def _round(candidate: Candidate, budget: Budget) -> Rate:
    if candidate.acall is not None:
        return await run_bounded_async(
            candidate.acall, max_count=budget.round_count, max_seconds=budget.round_seconds
        )
    assert candidate.call is not None
    return run_bounded(
        candidate.call, max_count=budget.round_count, max_seconds=budget.round_seconds
    )


async def _measure(cands: list[Candidate], budget: Budget) -> dict[str, list[Rate]]:
    rates: dict[str, list[Rate]] = {c.label: [] for c in cands}
    for _ in range(budget.rounds):
        for candidate in cands:
            rates[candidate.label].append(await _round(candidate, budget))
    return rates


def run(*, quick: bool) -> Section:
    budget = QUICK if quick else FULL
    key = _signing_key()
    issuer = AccessTokenIssuer(key, issuer=ISSUER, audience=AUDIENCE, ttl=timedelta(hours=1))
    user_id = uuid.uuid4()
    token = issuer.issue(user_id, Role.USER)
    cands = candidates(key, token)
    for remember in (False, True):
        principal = asyncio.run(verifier(key, remember=remember).verify(token))
        assert principal.user_id == user_id, "the verifier must accept the benchmark's token"

    rates = asyncio.run(_measure(cands, budget))
    medians = {label: statistics.median(r.per_second for r in rs) for label, rs in rates.items()}
    ceiling = medians[cands[0].label]

    section = Section("tokens", "Access-token verifications per second (in process, one core)")
    section.raw = {
        "token_bytes": len(token),
        "rounds": {label: [r.as_dict() for r in rs] for label, rs in rates.items()},
        "median_per_s": medians,
    }
    section.add(
        f"One thread, one event loop; {budget.rounds} interleaved rounds of up to "
        f"{budget.round_seconds:g} s each, median round shown. The token is a real access "
        f"token from `AccessTokenIssuer` ({len(token)} bytes, EdDSA). `GET /auth/me` is not "
        "used: it reads Postgres as well, so it is not a verification figure.",
        "",
    )
    rows = []
    for c in cands:
        per_s = [r.per_second for r in rates[c.label]]
        rows.append(
            [
                c.label,
                c.what,
                medians[c.label],
                1e6 / medians[c.label],
                f"{min(per_s):,.0f} to {max(per_s):,.0f}",
                float("nan") if c.label == REMEMBERED else medians[c.label] / ceiling,
            ]
        )
    section.add(
        *table(
            ["what", "measures", "verifications/s", "µs each", "range over rounds", "÷ bare"],
            rows,
        )
    )
    remember_for = verifier(key, remember=True).remember_for
    section.add(*_summary(medians[FIRST_SIGHT], medians[REMEMBERED], ceiling, remember_for))
    return section


def _summary(
    first_sight: float, remembered: float, ceiling: float, remember_for: float
) -> list[str]:
    return [
        f"**Verification**: on a token it has not seen, the verifier reaches "
        f"{first_sight / ceiling:.0%} of the bare signature check: of its "
        f"{1e6 / first_sight:.0f} µs per token, {1e6 / ceiling:.0f} µs are the Ed25519 check "
        "itself; the rest is base64 and JSON decoding, the claim checks and the key lookup, "
        "in Python, on the event loop of the service.",
        "",
        f"**Per request**: `TokenVerifier` remembers a good token (by default for "
        f"{remember_for:g} s, never past its expiry), so a client's later requests with the "
        f"same token cost {1e6 / remembered:.2f} µs each; a service pays the "
        f"{1e6 / first_sight:.0f} µs once per token per {remember_for:g} s. The remembered "
        "figure is a dictionary lookup, not a verification: it is above the ceiling by design "
        "and is not compared with it.",
        "",
    ]
