"""Text normalisation shared by the entity, embedding and reconciliation handlers."""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata

LEGAL_SUFFIXES = {
    "ltd", "limited", "llc", "inc", "incorporated", "corp", "corporation", "co", "company", "plc",
    "gmbh", "ag", "kg", "ohg", "ug", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "ab", "as", "oy",
    "aps", "pty", "pte", "lp", "llp", "sl", "kk", "se",
}
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_DOTTED = re.compile(r"\b((?:[^\W\d_]\.)+[^\W\d_]\b\.?)")


# Letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSED = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss", "æ": "ae",
                               "Æ": "AE", "œ": "oe", "Œ": "OE", "ı": "i", "þ": "th", "Þ": "Th"})


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSED))
                   if not unicodedata.combining(ch))


def normalize_name(name: str) -> str:
    """'ACME Holdings, Ltd.' and 'Acme Holdings Limited' both become 'acme holdings'."""
    text = strip_accents(name).casefold().replace("&", " and ")
    # "S.A." / "S.A" / "G.m.b.H." lose their dots before punctuation is dropped, so they stay one word.
    text = _DOTTED.sub(lambda m: m.group(1).replace(".", ""), text)
    words = _PUNCT.sub(" ", text).split()
    while words and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def entity_key(normalized: str) -> str:
    return hashlib.sha1(normalized.encode("utf-8")).hexdigest()[:16]


def hashed_ngram_vector(text: str, dimensions: int = 256, n: int = 3) -> list[float]:
    """An offline embedding: character n-grams hashed into `dimensions` buckets, L2-normalised.
    Similar strings share n-grams, so cosine similarity tracks textual similarity."""
    cleaned = f" {' '.join(strip_accents(text).casefold().split())} "
    vector = [0.0] * dimensions
    for i in range(max(1, len(cleaned) - n + 1)):
        gram = cleaned[i:i + n]
        digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vector[bucket] += sign
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]
