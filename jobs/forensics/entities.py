"""Entity names: a word-order- and abbreviation-insensitive fingerprint, and grouping of
near-duplicate names ("Northwind Traders", "NORTHWIND TRADERS LTD", "Nortwind Traders").

`jobs.datatypes.text.normalize_name` already folds case, accents, punctuation and trailing
legal suffixes, and `entity_key` hashes its result, so exact variants share a key in every
job and project. Grouping goes further and is job-wide: names whose fingerprints match, or
are similar enough (`name_similarity` >= threshold), are joined (transitively) and the group
takes the key of its most frequent name.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Hashable, Mapping

from jobs.forensics.similarity import UnionFind, dice, jaro_winkler, minhash_bands, shingles

ABBREVIATIONS = {
    "intl": "international", "int'l": "international", "mfg": "manufacturing", "svcs": "services",
    "svc": "services", "serv": "services", "bros": "brothers", "assoc": "associates", "grp": "group",
    "hldgs": "holdings", "hldg": "holding", "natl": "national", "mgmt": "management", "dist": "distribution",
    "tech": "technology", "techn": "technology", "sys": "systems", "eng": "engineering", "ind": "industries",
    "inds": "industries", "mktg": "marketing", "fin": "financial", "ctr": "center", "centre": "center",
    "univ": "university", "st": "saint", "ste": "sainte", "dept": "department",
}
STOPWORDS = {"the", "and", "of", "und", "et", "y", "de", "der", "la", "le"}
DEFAULT_THRESHOLD = 0.88


def comparable(normalized: str) -> str:
    """A normalised name with abbreviations expanded and filler words dropped, in its own
    word order ("the acme intl" -> "acme international")."""
    tokens = [ABBREVIATIONS.get(token, token) for token in normalized.split()]
    kept = [token for token in tokens if token not in STOPWORDS]
    return " ".join(kept or tokens)


def fingerprint(normalized: str) -> str:
    """`comparable` with its distinct words sorted: word order no longer matters either."""
    return " ".join(sorted(set(comparable(normalized).split())))


def name_similarity(a: str, b: str) -> float:
    """Similarity of two `comparable` names in [0, 1]: the best of trigram Dice (robust to an
    extra or missing word), the weakest Jaro-Winkler between aligned words of about equal
    length when both have as many words (robust to typos, strict about a different word), and, when
    the two are one typo apart (one character inserted, deleted, replaced or two swapped),
    1 - 1 / length (so a single typo in a name of 9 or more characters passes 0.88)."""
    if a == b:
        return 1.0
    score = dice(shingles(a), shingles(b))
    words_a, words_b = a.split(), b.split()
    if len(words_a) == len(words_b):
        # Jaro-Winkler rewards a shared prefix generously ("bela" / "belpanra" = 0.88), so it
        # only speaks for words of about the same length, as a typo leaves them.
        score = max(score, min(jaro_winkler(x, y) if abs(len(x) - len(y)) <= 1 else 0.0
                               for x, y in zip(words_a, words_b, strict=True)))
    if abs(len(a) - len(b)) <= 1 and one_edit_apart(a, b):
        score = max(score, 1 - 1 / max(len(a), len(b)))
    return score


def similar_enough(a: str, b: str, shingles_a: Collection[Hashable], shingles_b: Collection[Hashable],
                   threshold: float) -> bool:
    """`name_similarity(a, b) >= threshold` (for a threshold above 0), given the two names'
    shingles: the same three scores, tried cheapest first and each stopped as soon as it
    decides. Grouping scores hundreds of thousands of candidate pairs; the full score
    computed the shingles again for every pair and every word pair's Jaro-Winkler even after
    the first one fell short."""
    if a == b:
        return True
    # Dice of the two shingle sets; given as any collections of distinct shingles (or of
    # ids standing for them), so a caller may keep them compactly.
    sizes = len(shingles_a) + len(shingles_b)
    if not sizes or 2 * len(set(shingles_a).intersection(shingles_b)) / sizes >= threshold:
        return True
    if abs(len(a) - len(b)) <= 1 and 1 - 1 / max(len(a), len(b)) >= threshold and one_edit_apart(a, b):
        return True
    words_a, words_b = a.split(), b.split()
    if not words_a or len(words_a) != len(words_b):
        return False
    for x, y in zip(words_a, words_b, strict=True):
        if abs(len(x) - len(y)) > 1 or _word_jaro_winkler(x, y) < threshold:
            return False
    return True


# Names of one job share their words: the same two words meet again in many candidate pairs.
# Bounded, so a job of distinct words costs memory in proportion to this, not to its pairs.
_word_jaro_winkler = functools.lru_cache(maxsize=1 << 16)(jaro_winkler)


def one_edit_apart(a: str, b: str) -> bool:
    """True when a and b differ by exactly one insertion, deletion, substitution or swap of
    neighbouring characters (optimal string alignment distance 1)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1:]
    if a[i + 1:] == b[i + 1:]:
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]


@dataclasses.dataclass(frozen=True)
class Grouping:
    #: normalised name -> the normalised name that represents its group
    canonical: dict[str, str]
    #: canonical name -> its members (normalised names), only for groups of 2 or more
    groups: dict[str, list[str]]


def deletion_neighbours(text: str) -> set[str]:
    """`text` with each one character removed: two strings one edit apart (a substitution,
    insertion, deletion or swap of neighbours) always share one of these (or one is the other)."""
    return {text[:i] + text[i + 1:] for i in range(len(text))} | {text}


MAX_BUCKET = 200  # a bucket this big is a shared boilerplate word, not a near-duplicate signal


def group_names(counts: Mapping[str, int], threshold: float = DEFAULT_THRESHOLD) -> Grouping:
    """Groups normalised names (with their record counts) into near-duplicate groups.

    Guarantees: every name maps to a canonical name of its group; names with equal
    fingerprints are always together; the canonical name is the group's most frequent
    (then shortest, then alphabetically first), so it does not depend on input order.
    Candidate pairs come from blocking, so the cost grows with the number of distinct names,
    not its square: one-deletion neighbourhoods (every single typo) and MinHash buckets of
    trigrams (a word added, dropped or changed) of the `comparable` forms; each candidate is
    then decided by `similar_enough` (the verdict of `name_similarity` >= threshold, computed
    no further than it needs).
    """
    union = UnionFind()
    by_fingerprint: dict[str, str] = {}
    by_form: dict[str, str] = {}
    buckets: dict[object, list[str]] = {}
    # Each form's shingles as a tuple of ids shared through `vocabulary`: kept for the
    # pair scores, at a tenth of the memory of a set of strings per name.
    vocabulary: dict[str, int] = {}
    form_shingles: dict[str, tuple[int, ...]] = {}
    for name in counts:
        union.find(name)
        print_ = fingerprint(name)
        if print_ in by_fingerprint:
            union.union(by_fingerprint[print_], name)
            continue
        by_fingerprint[print_] = name
        form = comparable(name)
        by_form[form] = name
        for key in deletion_neighbours(form):
            buckets.setdefault(key, []).append(form)
        grams = shingles(form)
        form_shingles[form] = tuple(vocabulary.setdefault(gram, len(vocabulary)) for gram in grams)
        for key in minhash_bands(grams, bands=16, rows=4):
            buckets.setdefault(key, []).append(form)
    checked: set[tuple[str, str]] = set()
    for members in buckets.values():
        if len(members) < 2 or len(members) > MAX_BUCKET:
            continue
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if union.find(by_form[a]) == union.find(by_form[b]):
                    continue  # joined already through other names: scoring them changes nothing
                pair = (a, b) if a < b else (b, a)
                if pair in checked:
                    continue
                checked.add(pair)
                if similar_enough(a, b, form_shingles[a], form_shingles[b], threshold):
                    union.union(by_form[a], by_form[b])
    canonical: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    for members in union.groups().values():
        head = min(members, key=lambda n: (-counts[n], len(n), n))
        for name in members:
            canonical[name] = head
        if len(members) > 1:
            groups[head] = sorted(members)
    return Grouping(canonical=canonical, groups=groups)
