"""Stopping children: each one's process group asked to stop, a grace period to finish what it
has in flight, then SIGKILL for whatever is left of the group, and every child reaped.

The whole group, because a child's own children stay behind otherwise (nginx's workers outlive
their master). Every child here leads a group of its own (`launcher.spawn` starts it in a
session of its own), so the group's id is its pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from typing import Any

Popen = subprocess.Popen[Any]


def stop(children: Iterable[tuple[Popen, signal.Signals]], grace: float) -> list[Popen]:
    """Send each child's group its signal, all at once; wait for them with one deadline; kill
    what is left of each group; reap each. Returns those that had not ended within `grace`.

    A second Ctrl-C meanwhile is ignored, so that nothing is left running."""
    pairs = list(children)
    late = []
    with _ignoring_sigint():
        for process, signum in pairs:
            _signal_group(process, signum)
            _signal_group(process, signal.SIGCONT)  # a frozen (SIGSTOP) one acts on it too
        deadline = time.monotonic() + grace
        for process, _ in pairs:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                late.append(process)
            _signal_group(process, signal.SIGKILL)  # whatever is left of its group
            process.wait()
    return late


def _signal_group(process: Popen, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
