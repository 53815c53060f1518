"""A set of SHA-256 digests that an import can hold for every photo of a million-photo document."""

from collections.abc import Iterable

import numpy as np

# Digests are added to a small Python set first and merged into the sorted array this many at a time.
MERGE_AT = 65_536


class Digests:
    """SHA-256 digests (32 bytes each) kept in one sorted array, with membership by binary search.

    A Python set of them costs over three times the memory (a bytes object and a slot in the table for
    each), for every photo of a document and again for every photo of the library it goes into.
    Here each costs its 32 bytes, plus a set of at most MERGE_AT recent ones; a lookup is a binary
    search, seconds over a million-photo import.
    """

    def __init__(self, hex_digests: Iterable[str] = ()):
        self._sorted = np.empty(0, dtype="S32")
        self._recent: set[bytes] = set()
        for hex_digest in hex_digests:
            try:
                self.add(bytes.fromhex(hex_digest))
            except ValueError:  # not a SHA-256 in hex: it names no photo a document can hold
                continue

    def add(self, digest: bytes) -> None:
        self._recent.add(digest)
        if len(self._recent) >= MERGE_AT:
            self._merge()

    def __contains__(self, digest: bytes) -> bool:
        if digest in self._recent:
            return True
        if not len(self._sorted):  # the library's digests when it is empty: the common case
            return False
        # Both bounds: numpy hands back an element without its trailing zero bytes, so a found
        # element is not compared with digest; the bounds differ exactly when it is there.
        key = np.bytes_(digest)
        return bool(np.searchsorted(self._sorted, key, side="right") > np.searchsorted(self._sorted, key, side="left"))

    def __len__(self) -> int:
        return len(self._sorted) + len(self._recent)

    def _merge(self) -> None:
        merged = np.concatenate([self._sorted, np.array(list(self._recent), dtype="S32")])
        merged.sort()
        self._sorted, self._recent = merged, set()
