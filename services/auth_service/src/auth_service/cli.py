"""`auth-service serve | relay | migrate | wait-migrated | create-admin`: what compose,
Kubernetes and `make run` start."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from auth_service.settings import AuthSettings
from shared.cli import Command, ServiceCli


def _admin_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--username", required=True)
    parser.add_argument("--email", required=True)


def _create_admin_command(args: argparse.Namespace, settings: AuthSettings) -> int:
    return asyncio.run(_create_admin(settings, args.username, args.email))


MIGRATIONS = Path(__file__).with_name("migrations")

CLI = ServiceCli(
    prog="auth-service",
    service="auth_service",
    description=__doc__ or "",
    settings=AuthSettings,
    serve_help="serve HTTP on AUTH_HOST:AUTH_PORT",
    address=lambda s: (s.auth_host, s.auth_port),
    database=lambda s: s.auth_database_url,
    relay_address=lambda s: (s.auth_relay_host, s.auth_relay_port),
    migrations=MIGRATIONS,
    commands=[
        Command(
            "create-admin",
            "make an admin, or promote a user and set their password; the password from "
            "ADMIN_PASSWORD (else asked for)",
            _create_admin_command,
            _admin_arguments,
        )
    ],
)
main = CLI.main


async def _create_admin(settings: AuthSettings, username: str, email: str) -> int:
    from auth_service.main import create_app
    from auth_service.schemas import NewUser

    password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Password: ")
    try:
        new = NewUser(username=username, email=email, password=password)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", file=sys.stderr)
        return 2
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        user, created = await app.state.auth.make_admin(new)
    if created:
        print(f"created admin {user.username} ({user.id})")
    else:
        print(
            f"promoted {user.username} ({user.id}) to admin and set their password; "
            f"their email stays {user.email}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
