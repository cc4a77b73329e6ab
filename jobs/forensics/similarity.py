"""String and vector similarity, and the blocking that keeps near-duplicate search linear.

Comparing every pair of n texts is O(n^2); instead texts are shingled into character
n-grams and MinHashed into `bands` buckets of `rows` values each (locality-sensitive
hashing). Two texts whose shingle sets have Jaccard similarity s share at least one bucket
with probability 1 - (1 - s^rows)^bands: with the defaults (16 x 8) that is 99.99 % at
s = 0.9, 99.4 % at s = 0.85, 24 % at s = 0.6 and 1 % at s = 0.4, so texts that merely share
a template rarely become candidates (docs/performance.md compares band shapes on templated
descriptions). Candidates are then checked exactly.
"""

from __future__ import annotations

import functools
import hashlib
import math
import sys
from array import array
from collections.abc import Hashable, Iterable, Sequence

_MASK63 = (1 << 63) - 1


def shingles(text: str, n: int = 3) -> set[str]:
    """Character n-grams of `text` padded with a space at each end (so short words count)."""
    padded = f" {text} "
    if len(padded) <= n:
        return {padded}
    return {padded[i:i + n] for i in range(len(padded) - n + 1)}


def dice(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def overlap(a: set, b: set) -> float:
    """|a & b| / min(|a|, |b|): 1.0 when one is contained in the other (truncated names)."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def jaro_winkler(s1: str, s2: str, prefix_weight: float = 0.1) -> float:
    if s1 == s2:
        return 1.0
    len1, len2 = len(s1), len(s2)
    if not len1 or not len2:
        return 0.0
    window = max(0, max(len1, len2) // 2 - 1)
    matched1, matched2 = [False] * len1, [False] * len2
    matches = 0
    for i, ch in enumerate(s1):
        for j in range(max(0, i - window), min(len2, i + window + 1)):
            if not matched2[j] and s2[j] == ch:
                matched1[i] = matched2[j] = True
                matches += 1
                break
    if not matches:
        return 0.0
    transpositions, k = 0, 0
    for i in range(len1):
        if matched1[i]:
            while not matched2[k]:
                k += 1
            if s1[i] != s2[k]:
                transpositions += 1
            k += 1
    jaro = (matches / len1 + matches / len2 + (matches - transpositions / 2) / matches) / 3
    prefix = 0
    for a, b in zip(s1[:4], s2[:4], strict=False):
        if a != b:
            break
        prefix += 1
    return jaro + prefix * prefix_weight * (1 - jaro)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


_EMPTY = -1
_ROTATION_OFFSET = 1 << 57  # keeps a borrowed value apart from any value of the bin itself
_MASK64 = (1 << 64) - 1
BINS_PER_ROUND = 32


def _mix(h: int, seed: int) -> int:
    """A cheap 64-bit re-hash (splitmix64's finaliser) giving each round its own permutation."""
    h = ((h ^ seed) * 0x9E3779B97F4A7C15) & _MASK64
    h = ((h ^ (h >> 29)) * 0xBF58476D1CE4E5B9) & _MASK64
    return h ^ (h >> 32)


@functools.lru_cache(maxsize=1 << 17)
def _placements(item: str, rounds: int) -> tuple[tuple[int, int], ...]:
    """(bin, value) of one shingle in each round. Texts share most of their shingles, so each
    is hashed and mixed once per worker instead of once per text."""
    h = _hash64(item)
    placements = []
    for round_ in range(rounds):
        mixed = _mix(h, 0x5EED + round_ * 0x2545F4914F6CDD1D)
        placements.append((mixed % BINS_PER_ROUND, mixed // BINS_PER_ROUND))
    return tuple(placements)


def minhash_signature(items: Iterable[str], size: int) -> list[int]:
    """A MinHash signature of `size` values, by one-permutation hashing with rotation
    densification (Shrivastava & Li, ICML 2014) in rounds of 32 bins: in each round every item
    is hashed once into a bin, each bin keeps its minimum, and an empty bin borrows from the
    next non-empty bin to its right (plus an offset per step). Two sets agree at a position
    with probability equal to their Jaccard similarity, at O(rounds * len(items)) cost instead
    of classic MinHash's O(size * len(items)). Small bins keep borrowing (which correlates
    neighbouring positions) rare for short texts."""
    rounds = (size + BINS_PER_ROUND - 1) // BINS_PER_ROUND
    placed = [_placements(item, rounds) for item in set(items) or {""}]
    signature: list[int] = []
    for round_ in range(rounds):
        bins = [_EMPTY] * BINS_PER_ROUND
        for item_rounds in placed:
            index, value = item_rounds[round_]
            if bins[index] == _EMPTY or value < bins[index]:
                bins[index] = value
        for i in range(BINS_PER_ROUND):
            if bins[i] == _EMPTY:
                j, steps = (i + 1) % BINS_PER_ROUND, 1
                while bins[j] == _EMPTY:
                    j, steps = (j + 1) % BINS_PER_ROUND, steps + 1
                signature.append(bins[j] + steps * _ROTATION_OFFSET)
            else:
                signature.append(bins[i])
    return signature[:size]


def minhash_bands(items: Iterable[str], bands: int = 16, rows: int = 8) -> list[int]:
    """`bands` bucket keys (signed 63-bit ints, band number mixed in) for a set of shingles.
    A band takes every `bands`-th signature position, not a run of neighbours, so that
    positions correlated by densification fall into different bands. Deterministic across
    processes and releases (blake2b and fixed seeds, no per-process hash randomisation)."""
    signature = minhash_signature(items, bands * rows)
    keys = []
    for band in range(bands):
        chunk = signature[band::bands][:rows]
        digest = hashlib.blake2b(repr((band, chunk)).encode(), digest_size=8).digest()
        keys.append((int.from_bytes(digest, "little") & _MASK63) - (1 << 62))  # well inside a signed BIGINT
    return keys


class UnionFind:
    """Disjoint sets with path halving and union by size."""

    def __init__(self) -> None:
        self.parent: dict[Hashable, Hashable] = {}
        self.size: dict[Hashable, int] = {}

    def find(self, item: Hashable) -> Hashable:
        if item not in self.parent:
            self.parent[item] = item
            self.size[item] = 1
            return item
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: Hashable, b: Hashable) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return
        if self.size[root_a] < self.size[root_b]:
            root_a, root_b = root_b, root_a
        self.parent[root_b] = root_a
        self.size[root_a] += self.size[root_b]

    def groups(self) -> dict[Hashable, list[Hashable]]:
        result: dict[Hashable, list[Hashable]] = {}
        for item in list(self.parent):
            result.setdefault(self.find(item), []).append(item)
        return result


def pack_vector(vector: Sequence[float]) -> bytes:
    """float32, little-endian: 4 bytes per dimension, readable by numpy.frombuffer('<f4')."""
    data = array("f", vector)
    if sys.byteorder == "big":
        data.byteswap()
    return data.tobytes()


def unpack_vector(blob: bytes | memoryview) -> array:
    data = array("f")
    data.frombytes(bytes(blob))
    if sys.byteorder == "big":
        data.byteswap()
    return data


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; vectors stored by Zenith are unit-length, so this is a dot product
    normalised once more against float32 rounding."""
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
