"""Bounded memory for per-message state: a capped map (oldest out) and a duplicate detector.

Why: a long run (millions of messages) must not grow the gateway with every message (issue 10 item 1). What
falls out of memory is either not needed any more or read back from the trace on demand (``Seen``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CappedMap(Generic[K, V]):
    """A dict that keeps at most ``cap`` entries: inserting beyond it forgets the oldest insertion."""

    __slots__ = ("_d", "cap", "evicted")

    def __init__(self, cap: int) -> None:
        self._d: OrderedDict[K, V] = OrderedDict()
        self.cap = cap
        self.evicted = 0

    def get(self, key: K) -> V | None:
        return self._d.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def setdefault(self, key: K, value: V) -> V:
        """The value already there, or ``value`` inserted (evicting the oldest entry beyond ``cap``)."""
        old = self._d.get(key)
        if old is not None:
            return old
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> tuple[K, V] | None:
        """Insert (or replace) ``key``; returns the oldest entry forgotten to make room, if one was, so that
        whoever indexes the map can forget it too, one entry at a time (never a sweep of the whole index)."""
        d = self._d
        d[key] = value
        if len(d) > self.cap:
            self.evicted += 1
            return d.popitem(last=False)
        return None

    def items(self) -> Iterator[tuple[K, V]]:
        return iter(self._d.items())

    def pop(self, key: K) -> V | None:
        return self._d.pop(key, None)

    def drop_where(self, keep: Callable[[V], bool]) -> None:
        """Forget every entry whose value ``keep`` rejects (a deleted tenant's entries)."""
        for k in [k for k, v in self._d.items() if not keep(v)]:
            del self._d[k]


class Seen:
    """Has this key been accepted before? Recent keys in memory, all keys in a Bloom filter, the rest asked
    of the trace (``lookup``) only when the filter says "maybe" — so memory is fixed and the answer exact
    (as long as ``lookup`` is: the trace's message_id index)."""

    __slots__ = ("_bits", "_lookup", "_mask", "_recent", "lookups")

    def __init__(self, lookup: Callable[[tuple[str, str]], bool], *, recent: int = 32_768,
                 bits_log2: int = 25) -> None:
        self._recent: CappedMap[tuple[str, str], bool] = CappedMap(recent)
        self._bits = bytearray(1 << (bits_log2 - 3))  # 2**25 bits = 4 MiB: ~1 % false "maybe" at 3.5M keys
        self._mask = (1 << bits_log2) - 1
        self._lookup = lookup
        self.lookups = 0

    def _idx(self, key: tuple[str, str]) -> tuple[int, int, int]:
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        m = self._mask
        return h & m, (h >> 25) & m, ((h >> 39) ^ (h * 0x9E3779B1 >> 7)) & m

    def add(self, key: tuple[str, str]) -> None:
        self._recent.setdefault(key, True)
        bits = self._bits
        for i in self._idx(key):
            bits[i >> 3] |= 1 << (i & 7)

    def __contains__(self, key: tuple[str, str]) -> bool:
        if key in self._recent:
            return True
        bits = self._bits
        for i in self._idx(key):
            if not bits[i >> 3] & (1 << (i & 7)):
                return False
        if self._recent.evicted == 0:
            return False  # nothing ever left memory: the recent set is complete
        self.lookups += 1
        return self._lookup(key)
