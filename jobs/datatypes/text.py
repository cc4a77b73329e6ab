"""Text normalisation shared by the entity, embedding and reconciliation handlers."""

from __future__ import annotations

import functools
import hashlib
import math
import re
import unicodedata
from collections import Counter

LEGAL_SUFFIXES = {
    "ltd", "limited", "llc", "inc", "incorporated", "corp", "corporation", "co", "company", "plc",
    "gmbh", "ag", "kg", "kgaa", "ohg", "ug", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "oy",
    "oyj", "aps", "pty", "pte", "lp", "llp", "sl", "kk", "se", "ltda", "sau", "slu", "eirl", "cv", "bvba",
}
# Suffixes of several words, as tokens after accents, case and dots are folded ("S.A. de C.V."
# -> sa de cv, "S. A." -> s a, "S.à r.l." -> sa rl). "&" inside them is not the word "and":
# "Müller GmbH & Co. KG" is Müller GmbH's key, not "muller gmbh and".
_COMPOUND_SUFFIXES = sorted({
    ("gmbh", "&", "co", "kg"), ("gmbh", "&", "co", "kgaa"), ("gmbh", "&", "co", "ohg"), ("gmbh", "&", "co"),
    ("ag", "&", "co", "kg"), ("ag", "&", "co", "kgaa"), ("ug", "&", "co", "kg"), ("se", "&", "co", "kg"),
    ("&", "co", "kg"), ("&", "co", "kgaa"), ("&", "co", "ohg"), ("&", "co"), ("&", "cie"), ("et", "cie"),
    ("sa", "de", "cv"), ("s", "a", "de", "c", "v"), ("sapi", "de", "cv"), ("s", "de", "rl"),
    ("s", "de", "rl", "de", "cv"), ("srl", "de", "cv"), ("sa", "rl"), ("s", "a", "r", "l"), ("s", "a"),
    ("s", "a", "s"), ("s", "l"),
    ("s", "r", "l"), ("s", "p", "a"), ("s", "a", "u"), ("b", "v"), ("n", "v"), ("a", "g"), ("a", "b"),
    ("pty", "ltd"), ("pte", "ltd"), ("co", "ltd"), ("co", "inc"), ("co", "llc"), ("l", "l", "c"), ("l", "l", "p"),
}, key=len, reverse=True)
_PUNCT = re.compile(r"[^\w\s&]", re.UNICODE)
_DOTTED = re.compile(r"\b((?:[^\W\d_]\.)+[^\W\d_]\b\.?)")


# Letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae",
                               "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i", "þ": "th", "Þ": "Th"})


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
                   if not unicodedata.combining(ch))


def normalize_name(name: str) -> str:
    """'ACME Holdings, Ltd.' and 'Acme Holdings Limited' both become 'acme holdings';
    'Müller GmbH & Co. KG' becomes 'muller' like 'Müller GmbH'; 'Smith & Jones' becomes
    'smith and jones' ('&' is 'and' except inside a legal suffix). A name that is nothing but
    a suffix keeps its last word."""
    text = strip_accents(name).casefold()
    # "S.A." / "S.A" / "G.m.b.H." lose their dots before punctuation is dropped, so they stay one word.
    text = _DOTTED.sub(lambda m: m.group(1).replace(".", ""), text)
    words = _PUNCT.sub(" ", text.replace("&", " & ")).split()
    words = ["&" if word == "and" else word for word in words]
    while len(words) > 1:
        for suffix in _COMPOUND_SUFFIXES:
            if len(suffix) < len(words) and tuple(words[-len(suffix):]) == suffix:
                del words[-len(suffix):]
                break
        else:
            if words[-1] in LEGAL_SUFFIXES or words[-1] == "&":
                words.pop()
                continue
            break
    return " ".join("and" if word == "&" else word for word in words)


def entity_key(normalized: str) -> str:
    return hashlib.sha1(normalized.encode("utf-8")).hexdigest()[:16]


@functools.lru_cache(maxsize=1 << 17)
def _gram_slot(gram: str, dimensions: int) -> tuple[int, float]:
    """(bucket, sign) of an n-gram. Texts share most of their n-grams (an alphabet's worth of
    trigrams), so each is hashed once per worker rather than once per occurrence."""
    digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest[:4], "little") % dimensions, (1.0 if digest[4] & 1 else -1.0)


def hashed_ngram_vector(text: str, dimensions: int = 256, n: int = 3) -> list[float]:
    """An offline embedding: character n-grams hashed into `dimensions` buckets, L2-normalised.
    Similar strings share n-grams, so cosine similarity tracks textual similarity."""
    cleaned = f" {' '.join(strip_accents(text).casefold().split())} "
    vector = [0.0] * dimensions
    for i in range(max(1, len(cleaned) - n + 1)):
        bucket, sign = _gram_slot(cleaned[i:i + n], dimensions)
        vector[bucket] += sign
    # The buckets hold small integers, so a vector has a handful of distinct values: the norm
    # is summed over them and each is scaled and rounded once. The values are the same as
    # summing and rounding every bucket (sums of integers are exact in any order); rounding
    # every bucket was a quarter of an embedding batch's time.
    distinct = Counter(vector)
    norm = math.sqrt(sum(count * v * v for v, count in distinct.items())) or 1.0
    scaled = {v: round(v / norm, 6) for v in distinct}
    return [scaled[v] for v in vector]
