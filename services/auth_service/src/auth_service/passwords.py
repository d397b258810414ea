"""Password rules and argon2id hashing, on a thread pool so a burst of logins never stalls the
event loop (argon2-cffi releases the GIL while it hashes)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 128


def password_problems(password: str, *, username: str | None = None) -> list[str]:
    """Every rule the password breaks, in words a user can act on (empty: it is fine)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if not any(c.isalpha() for c in password):
        problems.append("must contain a letter")
    if not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if username and password.casefold() == username.casefold():
        problems.append("must not be the username")
    return problems


M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter


def give_hash_memory_back() -> None:
    """Each hash takes `memory_kib` (19 MiB) of C memory. glibc serves a block that large by
    mmap and gives it back when freed, but then raises its threshold to that size, so the next
    ones come from each thread's heap and stay: 38 MiB of resident memory kept for good by two
    hashing threads. A fixed threshold (`mallopt`) turns that adjustment off. Measured: 20 MB
    resident after 20 hashes with it, 58 MB without. Elsewhere than glibc, nothing is done."""
    library = ctypes.util.find_library("c")
    if library is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(library).mallopt(M_MMAP_THRESHOLD, 128 * 1024)


class PasswordHasher:
    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int, threads: int) -> None:
        give_hash_memory_back()
        self._argon2 = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="argon2")
        # Checked against when a login names no user, so that the answer takes as long.
        self._dummy = self._argon2.hash("not a real password 0")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._argon2.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._verify, hashed, password)

    def needs_rehash(self, hashed: str) -> bool:
        return self._argon2.check_needs_rehash(hashed)

    def _verify(self, hashed: str | None, password: str) -> bool:
        try:
            return self._argon2.verify(hashed or self._dummy, password) and hashed is not None
        except (VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=True)
