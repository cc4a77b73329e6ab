"""Vectors and MinHash band keys are stable across versions: find-similar compares a new
text's vector with vectors stored by earlier jobs, and band keys written by one worker must
meet those written by another. Speed-ups (per-worker caches of n-gram and shingle hashes)
must not change a single value."""

from __future__ import annotations

import hashlib
import json

from jobs.datatypes.text import hashed_ngram_vector
from jobs.forensics.similarity import minhash_bands, minhash_signature, shingles

TEXTS = ["invoice 123 rent", "Zahlung an Müller GmbH, Rechnung 4711", "", "a"]
# sha256 of the values as computed before the caches existed (commit 499281b)
GOLDEN = "c697e952be586559e5dd18874be3c5db9d1113201d45872952b0e779ab484d06"


def _digest() -> str:
    values = [[hashed_ngram_vector(t) for t in TEXTS], [minhash_signature(shingles(t), 128) for t in TEXTS],
              [minhash_bands(shingles(t)) for t in TEXTS]]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


def test_it_computes_the_same_vectors_and_band_keys_as_before():
    assert _digest() == GOLDEN


def test_it_computes_the_same_values_again_from_its_caches():
    first = [hashed_ngram_vector(t) for t in TEXTS]
    assert [hashed_ngram_vector(t) for t in TEXTS] == first
    assert _digest() == GOLDEN


def test_a_batch_stores_the_vector_and_bands_a_query_computes_for_the_same_text():
    """Batches take a text's vector and band keys from a per-worker cache; find-similar computes
    a query's vector with `embed`: the same text must give the same stored bytes, cached or not."""
    from jobs.datatypes.base import BatchContext
    from jobs.datatypes.embedding import EmbeddingHandler, clean_text, embed, hashed_features
    from jobs.forensics.similarity import pack_vector

    ctx = BatchContext(job_id=None, project_id="p", batch_id=0, batch_number=0, data_type="embedding", options={},
                       attempt=1)
    handler = EmbeddingHandler()
    for text in [*TEXTS[:2], "Office rent March - ACME", "Office rent March - ACME"]:
        row = handler.validate({"id": "x", "text": text}, ctx)
        assert row["vector"] == pack_vector(embed(text, {})[1]) and row["dimensions"] == 256
        assert row["bands"] == tuple(minhash_bands(shingles(clean_text(text))))
    assert hashed_features.cache_info().hits >= 1
