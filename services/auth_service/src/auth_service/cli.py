"""`auth-service serve | migrate | wait-migrated | create-admin`: what compose, Kubernetes and
`make run` start."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from auth_service.settings import AuthSettings
from shared.logs import setup_logging
from shared.server import serve

MIGRATIONS = Path(__file__).with_name("migrations")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="auth-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve HTTP on AUTH_HOST:AUTH_PORT")
    commands.add_parser("migrate", help="create the database if needed; migrate it to head")
    waiting = commands.add_parser(
        "wait-migrated",
        help="migrate nothing: wait until the database is at this version's head (exit 1 if "
        "not within --timeout); a Kubernetes init container, while the migration Job runs",
    )
    waiting.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    admin = commands.add_parser(
        "create-admin",
        help="make an admin, or promote a user and set their password; the password from "
        "ADMIN_PASSWORD (else asked for)",
    )
    admin.add_argument("--username", required=True)
    admin.add_argument("--email", required=True)
    args = parser.parse_args(argv)

    settings = AuthSettings()
    setup_logging("auth_service", settings.log_level)
    if args.command == "serve":
        serve(
            "auth_service.main:create_app",
            service="auth_service",
            host=settings.auth_host,
            port=settings.auth_port,
        )
    elif args.command == "migrate":
        from shared.migrations import upgrade  # Alembic, for this command only

        upgrade(MIGRATIONS, settings.auth_database_url.get_secret_value())
    elif args.command == "wait-migrated":
        url = settings.auth_database_url.get_secret_value()
        from shared.migrations import wait_until_migrated

        return 0 if wait_until_migrated(MIGRATIONS, url, timeout=args.timeout) else 1
    else:
        return asyncio.run(_create_admin(settings, args.username, args.email))
    return 0


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
