"""Sign-in throttling: back-off per account and per client address, and a bound on the password
hashes computed at once.

A password guess costs the guesser one request and the server one argon2 hash (64 MiB, about a
sixth of a second): without limits both are free to repeat. Each account (as typed, known or not,
so throttling does not tell which names exist) and each client address gets a few failures for
free; after that every failure locks it for twice as long as the one before, up to MAX_LOCK. A
locked account or address is refused before any hash is computed, the right password included,
and refusals do not lengthen the lock. Counts live in this process (a restart forgets them) and
are forgotten after a quiet spell. At most `slots` hashes run at once; a sign-in that finds no
free slot within `slot_wait` seconds is turned away (503) instead of queueing memory.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

ACCOUNT_FREE = 5  # failures before an account locks
ADDRESS_FREE = 20  # failures before a client address locks (offices share one behind NAT)
MAX_LOCK = 900.0  # seconds
ACCOUNT_MEMORY = 24 * 3600.0  # an account's failures are forgotten after a day without one
ADDRESS_MEMORY = 3600.0  # an address's after an hour
MAX_ENTRIES = 50_000  # bounds memory under a spray of made-up names; the oldest go first


class Busy(Exception):
    """Every hash slot is taken: try again in a moment."""


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    until: float = 0.0  # locked until this time (clock seconds)


class _Counter:
    def __init__(self, free: int, memory: float):
        self.free, self.memory = free, memory
        self.entries: OrderedDict[str, _Failures] = OrderedDict()

    def locked_until(self, key: str, now: float) -> float:
        entry = self.entries.get(key)
        if entry is None:
            return 0.0
        if now - entry.last > self.memory:
            del self.entries[key]
            return 0.0
        return entry.until if entry.until > now else 0.0

    def fail(self, key: str, now: float) -> float:
        """Count one failure; the seconds it locks the key for (0: not locked)."""
        entry = self.entries.pop(key, None)
        if entry is None or now - entry.last > self.memory:
            entry = _Failures()
        entry.count += 1
        entry.last = now
        lock = 0.0
        if entry.count >= self.free:
            lock = min(MAX_LOCK, 2.0 ** (entry.count - self.free + 1))
            entry.until = now + lock
        self.entries[key] = entry  # most recent last
        while len(self.entries) > MAX_ENTRIES:
            self.entries.popitem(last=False)
        return lock

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)


class LoginGuard:
    """Throttles sign-ins; `clock` (seconds, wall time) is injectable so tests need not wait."""

    def __init__(self, clock: Callable[[], float] = time.time, slots: int = 2,
                 slot_wait: float = 1.0):
        self.clock = clock
        self.slot_wait = slot_wait
        self._accounts = _Counter(ACCOUNT_FREE, ACCOUNT_MEMORY)
        self._addresses = _Counter(ADDRESS_FREE, ADDRESS_MEMORY)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(slots)

    def retry_at(self, username: str, address: str) -> float | None:
        """When this account and address may try again, if either is locked now."""
        now = self.clock()
        with self._lock:
            until = max(self._accounts.locked_until(username, now),
                        self._addresses.locked_until(address, now))
        return until or None

    def failed(self, username: str, address: str) -> float:
        """Count a wrong password; the seconds of lock it starts (0 if none)."""
        now = self.clock()
        with self._lock:
            return max(self._accounts.fail(username, now), self._addresses.fail(address, now))

    def succeeded(self, username: str) -> None:
        """The account starts afresh; the address keeps its count (one good account must not
        wash away the guesses made at others from the same place)."""
        with self._lock:
            self._accounts.forget(username)

    @contextmanager
    def hashing(self) -> Iterator[None]:
        """Hold one of the hash slots while verifying a password; Busy if none frees in time."""
        if not self._slots.acquire(timeout=self.slot_wait):
            raise Busy()
        try:
            yield
        finally:
            self._slots.release()
