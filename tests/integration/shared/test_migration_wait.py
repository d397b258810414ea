"""`<service> wait-migrated`: a Kubernetes pod's init container waits until the migration Job
has brought the database to the head of the history its own image carries."""

from __future__ import annotations

import asyncio
import threading
import time

from deploy.stack.databases import drop_database, fresh_database

from auth_service.cli import MIGRATIONS
from shared.migrations import ensure_database, upgrade, wait_until_migrated
from tests.support.servers import Servers


def _empty_database(url: str) -> str:
    asyncio.run(drop_database(url))
    asyncio.run(ensure_database(url))
    return url


def test_a_database_at_head_is_found_migrated_at_once(servers: Servers) -> None:
    url = fresh_database(servers.database("wait_migrated_done"), MIGRATIONS)
    started = time.monotonic()
    assert wait_until_migrated(MIGRATIONS, url, timeout=5)
    assert time.monotonic() - started < 5


def test_a_database_no_one_migrates_is_given_up_on_at_the_timeout(servers: Servers) -> None:
    url = _empty_database(servers.database("wait_migrated_never"))
    started = time.monotonic()
    assert not wait_until_migrated(MIGRATIONS, url, timeout=1.0, every=0.2)
    assert 0.8 <= time.monotonic() - started < 5


def test_a_database_that_does_not_exist_yet_is_waited_for_too(servers: Servers) -> None:
    url = servers.database("wait_migrated_missing")
    asyncio.run(drop_database(url))
    assert not wait_until_migrated(MIGRATIONS, url, timeout=0.5, every=0.2)


def test_the_wait_ends_once_another_process_has_migrated(servers: Servers) -> None:
    url = _empty_database(servers.database("wait_migrated_later"))
    migrator = threading.Timer(1.0, upgrade, args=(MIGRATIONS, url))
    migrator.start()
    try:
        started = time.monotonic()
        assert wait_until_migrated(MIGRATIONS, url, timeout=30, every=0.2)
        assert time.monotonic() - started >= 0.9
    finally:
        migrator.join()
