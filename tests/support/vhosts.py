"""A RabbitMQ virtual host of a test's own on the shared broker: two stacks that declare the
same queues each need one, or their consumers take each other's messages. AMQP cannot make
a vhost, so rabbitmqctl does, on the node of this machine."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

LOCAL = {"127.0.0.1", "localhost", "::1"}


def _rabbitmqctl(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def own_vhost(url: str, suffix: str) -> Iterator[str]:
    """`url` moved to a fresh vhost named after its own plus `suffix` (`wt-e2e` and
    `lifecycle`: `wt-e2e.lifecycle`), with every permission for the URL's user. What an
    earlier run left there is deleted first; the vhost is deleted after."""
    parts = urlsplit(url)
    binary = shutil.which("rabbitmqctl")
    if binary is None or (parts.hostname or "127.0.0.1") not in LOCAL:
        pytest.fail(
            "a second e2e stack needs a RabbitMQ vhost of its own, made with rabbitmqctl on "
            f"the broker's machine: rabbitmqctl is {binary or 'not on PATH'}, the broker "
            f"is at {parts.hostname}"
        )
    base = unquote(parts.path.removeprefix("/")) or "default"
    name = f"{base}.{suffix}"
    _rabbitmqctl(binary, "delete_vhost", name)  # an earlier run's, if any
    for args in (
        ("add_vhost", name),
        ("set_permissions", "-p", name, unquote(parts.username or "guest"), ".*", ".*", ".*"),
    ):
        done = _rabbitmqctl(binary, *args)
        if done.returncode != 0:
            pytest.fail(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
    try:
        yield urlunsplit(parts._replace(path="/" + quote(name, safe="")))
    finally:
        _rabbitmqctl(binary, "delete_vhost", name)
