"""A user signed up and logged in through a stack's gateway, as the tests' clients are."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.factories import user_body

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Account:
    id: str
    refresh_token: str
    http: httpx.AsyncClient  # sends this user's access token


async def sign_up(http: httpx.AsyncClient) -> Account:
    """Register a new user through the gateway `http` reaches, log in by the form, and have
    `http` send the access token from then on."""
    body = user_body()
    created = await http.post("/auth/create_user", json=body)
    assert created.status_code == 201, created.text
    tokens = await http.post(
        "/auth/token", data={"username": body["username"], "password": body["password"]}
    )
    assert tokens.status_code == 200, tokens.text
    http.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
    return Account(
        id=created.json()["id"],
        refresh_token=tokens.json()["refresh_token"],
        http=http,
    )


async def sign_in(http: httpx.AsyncClient, username: str, password: str) -> str:
    """Log in by the form; `http` sends the access token from then on. Returns the user's id."""
    tokens = await http.post("/auth/token", data={"username": username, "password": password})
    assert tokens.status_code == 200, tokens.text
    http.headers["Authorization"] = f"Bearer {tokens.json()['access_token']}"
    me = await http.get("/auth/me")
    assert me.status_code == 200, me.text
    user_id: str = me.json()["id"]
    return user_id


def make_admin(env: Mapping[str, str], username: str, email: str, password: str) -> str:
    """`make admin` as a newcomer types it, against the stack `env` describes; its output.
    Tried again (three times at most) when Postgres has no connection to spare: the server
    is shared with whatever else runs on the machine."""
    for _ in range(3):
        done = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "admin",
                f"USERNAME={username}",
                f"EMAIL={email}",
                f"PASSWORD={password}",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if "too many clients" not in done.stdout + done.stderr:
            break
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
