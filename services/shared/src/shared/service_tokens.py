"""A service's own access token (client-credentials grant), fetched and reused until it is
about to expire: what one service sends when it calls another's /internal/ routes."""

from __future__ import annotations

import asyncio
import time

import httpx

from shared.failures import DependencyUnavailable


class ServiceTokens:
    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient,
        *,
        renew_before: float = 60.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.http = http
        self.renew_before = renew_before
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() > self._expires_at - self.renew_before:
            async with self._lock:
                if self._token is None or time.monotonic() > self._expires_at - self.renew_before:
                    await self._fetch()
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self) -> None:
        try:
            response = await self.http.post(
                self.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self._secret),
                timeout=2.0,
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DependencyUnavailable("No service token from the auth service") from exc
        self._token = body["access_token"]
        self._expires_at = time.monotonic() + float(body["expires_in"])
