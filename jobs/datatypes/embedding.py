"""`embedding` records: texts (transaction descriptions) turned into vectors, near-duplicate
texts found job-wide, and `find similar` served from the stored vectors.

A record has `id` and `text` (or `description`). With `options.source = "project"` the job
vectorises the project's stored transactions instead (their descriptions, or the
counterparty when a description is empty; see `jobs.datatypes.stored_source`), so `find similar`
works for a stored transaction: `?similar_to=<transaction id>` on the job's results, or
`GET /api/v1/projects/{id}/transactions/{transaction id}/similar` (`jobs.selectors.results`).

- **Per batch**: each text is vectorised while the batch validates (outside the database
  transaction). The default method works offline with no model: character trigrams hashed
  into 256 signed buckets, L2-normalised (`jobs.datatypes.text.hashed_ngram_vector`), so
  cosine similarity follows textual overlap; punctuation is dropped first (`clean_text`), as
  exports differ in it more than in words. With `options.method = "sentence-transformers"`
  and that package and `options.model` already installed locally, the model's embeddings are
  used instead (nothing is downloaded; when it is unavailable the hashed method is used and
  the batch statistics say so). Each text also gets 16 MinHash bucket keys (`EmbeddingBand`).
- **Job-wide** (summarize): texts sharing a bucket are candidates; a candidate pair whose
  vectors have cosine >= `near_duplicate_threshold` (default 0.9) is a near-duplicate, and
  near-duplicates are grouped transitively. Each text of a group but the first names the
  group's first text in `duplicate_of`. Bucket grouping runs in the database, so memory
  holds only the candidates, not the job.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from django.db.models import Count

from jobs import sql
from jobs.datatypes import stored_source
from jobs.datatypes.base import BatchContext, Handler, RecordRejected
from jobs.datatypes.fields import require_text
from jobs.datatypes.text import hashed_ngram_vector, strip_accents
from jobs.forensics.similarity import UnionFind, cosine, minhash_bands, pack_vector, shingles, unpack_vector
from jobs.models import EmbeddingBand, TextEmbedding
from jobs.sql import insert_missing, mark_near_duplicates, vector_digests

logger = logging.getLogger(__name__)

DIMENSIONS = 256
HASHED_METHOD = f"hashed-char-3gram-{DIMENSIONS}"
DEFAULT_THRESHOLD = 0.9
MAX_BUCKET = 200  # larger buckets (boilerplate texts) are checked against one representative
LOAD_CHUNK = 1000
MARK_CHUNK = 50_000  # near-duplicate marks written per UPDATE
TEXT_CACHE = 16_384  # distinct texts whose vector and band keys a worker keeps (hashed_features)


_NOT_WORD = re.compile(r"[\W_]+")


def clean_text(text: str) -> str:
    """What is compared of a text: letters and digits, case and accents folded, punctuation and
    runs of spaces made one space ("Invoice 123: rent" = "invoice 123 rent")."""
    return " ".join(_NOT_WORD.sub(" ", strip_accents(text).casefold()).split())


def threshold_for(options: dict | None) -> float:
    value = (options or {}).get("near_duplicate_threshold", DEFAULT_THRESHOLD)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise RecordRejected("invalid_options", "options.near_duplicate_threshold must be a number in (0, 1]",
                             "options")
    return float(value)


@functools.lru_cache(maxsize=4)
def _sentence_model(name: str):
    """A locally installed sentence-transformers model, or None. Never downloads."""
    try:
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return SentenceTransformer(name, local_files_only=True)
    except Exception:
        logger.warning("sentence model %r is not available locally; using hashed n-grams", name)
        return None


def embed(text: str, options: dict | None) -> tuple[str, list[float]]:
    """(method, unit vector) for `text` under the job's options."""
    options = options or {}
    if options.get("method") == "sentence-transformers":
        name = str(options.get("model") or "all-MiniLM-L6-v2")
        model = _sentence_model(name)
        if model is not None:
            vector = model.encode([text], normalize_embeddings=True)[0]
            return f"sentence-transformers:{name}", [float(v) for v in vector]
    return HASHED_METHOD, hashed_ngram_vector(clean_text(text), DIMENSIONS)


@functools.lru_cache(maxsize=TEXT_CACHE)
def hashed_features(text: str) -> tuple[bytes, tuple[int, ...]]:
    """A text's hashed-n-gram vector (packed float32) and its MinHash band keys, as `embed`
    and `minhash_bands` give them. Bank and ledger descriptions repeat word for word, so each
    worker computes a distinct text once: `TEXT_CACHE` texts of about 1.7 KB each."""
    cleaned = clean_text(text)
    return pack_vector(hashed_ngram_vector(cleaned, DIMENSIONS)), tuple(minhash_bands(shingles(cleaned)))


def transaction_text(description: str, counterparty: str) -> str:
    """What is vectorised of a stored transaction: its description, else its counterparty."""
    return (description or "").strip() or (counterparty or "").strip()


class EmbeddingHandler(Handler):
    key_field = "id"
    results_kind = "embeddings"
    bulk_loaded = (TextEmbedding, EmbeddingBand)

    #: `options.source = "project"` vectorises the project's stored transactions (jobs.datatypes.stored_source)
    accepts_project_source = True

    def validate(self, record: dict, ctx: BatchContext) -> dict:
        threshold_for(ctx.options)
        from_store = stored_source.is_stored(record)
        external_id = require_text(record, "id", 128)
        text = record.get("text") or record.get("description")
        if from_store:
            text = transaction_text(record["description"], record["counterparty"])
        if not isinstance(text, str) or not text.strip():
            raise RecordRejected("missing_text", "text (or description) is required", "text")
        if len(text) > 10_000:
            raise RecordRejected("invalid_text", "text is longer than 10000 characters", "text")
        if (ctx.options or {}).get("method") == "sentence-transformers":
            method, vector = embed(text, ctx.options)
            packed, dimensions = pack_vector(vector), len(vector)
            bands = tuple(minhash_bands(shingles(clean_text(text))))
        else:
            method, dimensions = HASHED_METHOD, DIMENSIONS
            packed, bands = hashed_features(text)
        return {"id": external_id, "text": text.strip(), "method": method, "vector": packed,
                "dimensions": dimensions, "bands": bands}

    def persist(self, rows, ctx: BatchContext) -> dict:
        # A rerun of the batch writes the same rows again: conflicts are skipped.
        insert_missing(TextEmbedding, ("job", "item_index", "external_id", "text", "method", "dimensions", "vector",
                                       "duplicate_of"),
                       [(ctx.job_id, index, r["id"], r["text"], r["method"], r["dimensions"], r["vector"],
                         "") for index, r in rows],
                       ("job", "item_index"))
        insert_missing(EmbeddingBand, ("job", "key", "item_index"),
                       [(ctx.job_id, key, index) for index, r in rows for key in set(r["bands"])],
                       ("job", "key", "item_index"))
        methods: dict[str, int] = {}
        for _, r in rows:
            methods[r["method"]] = methods.get(r["method"], 0) + 1
        return {"vectors": len(rows), "methods": methods}

    def summarize(self, job: Any, batch_stats: Iterable[dict]) -> dict:
        try:
            threshold = threshold_for(job.options)
        except RecordRejected as exc:
            return {"error": exc.message}
        methods: dict[str, int] = {}
        for stats in batch_stats:
            for method, n in ((stats or {}).get("methods") or {}).items():
                methods[method] = methods.get(method, 0) + n
        groups = near_duplicate_groups(job.id, threshold)
        return {
            "texts": TextEmbedding.objects.filter(job_id=job.id).count(),
            "methods": methods,
            "near_duplicate_threshold": threshold,
            "near_duplicate_groups": len(groups),
            "near_duplicate_texts": sum(len(members) - 1 for members in groups),
        }


def _representatives(job_id) -> tuple[dict[int, int], dict[int, list[int]], list[int]]:
    """(item index -> the first item index with the same vector, for texts whose vector another
    text repeats; representative -> its copies; the first text of every distinct vector).
    Vectors are compared by a digest, computed by the database where it can
    (jobs.sql.vector_digests): exports repeat their descriptions word for word ("Office rent
    March - ACME"), and a text identical to another needs no cosine and no candidate pair of
    its own (docs/design.md, "Near-duplicate texts")."""
    first_by_digest: dict[str, int] = {}
    representative: dict[int, int] = {}
    copies: dict[int, list[int]] = {}
    for index, digest in vector_digests(job_id):
        first = first_by_digest.setdefault(digest, index)
        if first != index:
            representative[index] = first
            copies.setdefault(first, []).append(index)
    return representative, copies, sorted(first_by_digest.values())


def _candidate_pairs(job_id, representative: dict[int, int], firsts: list[int]) -> set[tuple[int, int]]:
    """Pairs of distinct vectors that share a MinHash bucket. Only the buckets of each distinct
    vector's first text are read: its copies have the same text, hence the same buckets, and
    reading them (16 rows a text) was most of a 1M-text finalization when the texts repeat.
    Where most vectors are distinct, the shared buckets of every text are read instead, each
    member replaced by its representative. A bucket of more than MAX_BUCKET distinct vectors
    (boilerplate) is checked against its first one only, which bounds the pairs by MAX_BUCKET
    per bucket instead of its square."""
    if len(firsts) * 2 <= len(firsts) + len(representative):
        rows = sql.band_keys_of(job_id, firsts)
    else:
        shared = (EmbeddingBand.objects.filter(job_id=job_id).values("key").annotate(n=Count("id"))
                  .filter(n__gt=1).values("key"))
        rows = (EmbeddingBand.objects.filter(job_id=job_id, key__in=shared).order_by("key", "item_index")
                .values_list("key", "item_index").iterator(chunk_size=5000))
    pairs: set[tuple[int, int]] = set()
    for _, group in groupby(rows, key=lambda row: row[0]):
        members = sorted({representative.get(index, index) for _, index in group})
        if len(members) < 2:
            continue
        if len(members) > MAX_BUCKET:
            pairs.update((members[0], other) for other in members[1:])
            continue
        for i, a in enumerate(members):
            pairs.update((a, b) for b in members[i + 1:])
    return pairs


def _vectors(job_id, indexes: set[int]) -> dict[int, tuple[int, str, Any]]:
    """item index -> (row id, external id, vector), read in chunks."""
    found: dict[int, tuple[int, str, Any]] = {}
    ordered = sorted(indexes)
    for start in range(0, len(ordered), LOAD_CHUNK):
        for row_id, index, external_id, blob in TextEmbedding.objects.filter(
                job_id=job_id, item_index__in=ordered[start:start + LOAD_CHUNK]).values_list(
                "id", "item_index", "external_id", "vector"):
            found[index] = (row_id, external_id, unpack_vector(blob))
    return found


def near_duplicate_groups(job_id, threshold: float) -> list[list[int]]:
    """Finds and stores the job's near-duplicate groups (lists of item indexes, first text
    first). Replaces any earlier result, so running it again is harmless.

    Texts with the same vector are one group at once (similarity 1.0); candidate pairs come
    from the buckets of distinct vectors only, and a pair already joined through others is
    not compared. Holds one digest per distinct vector, the candidate pairs and their
    vectors, not the job."""
    TextEmbedding.objects.filter(job_id=job_id).exclude(duplicate_of="").update(duplicate_of="", similarity=None)
    representative, copies, firsts = _representatives(job_id)
    pairs = _candidate_pairs(job_id, representative, firsts)
    union = UnionFind()
    for head, repeats in copies.items():
        for index in repeats:
            union.union(head, index)
    vectors = _vectors(job_id, {index for pair in pairs for index in pair})
    for a, b in sorted(pairs):
        if union.find(a) == union.find(b):
            continue  # already grouped through other pairs: the cosine would change nothing
        va, vb = vectors.get(a), vectors.get(b)
        if va and vb and len(va[2]) == len(vb[2]) and cosine(va[2], vb[2]) >= threshold:
            union.union(a, b)
    groups = [sorted(members) for members in union.groups().values() if len(members) > 1]
    # Each member names its group's first text with its similarity to it (members sharing a
    # vector share it), written in chunks of joined UPDATEs.
    heads = {members[0] for members in groups}
    vectors.update(_vectors(job_id, ({representative.get(i, i) for members in groups for i in members} | heads)
                            - set(vectors)))
    marks: list[tuple[int, str, float]] = []
    for members in groups:
        head = members[0]  # the first text of the group is the first of its vector too
        head_id, head_vector = vectors[head][1], vectors[head][2]
        by_vector: dict[int, list[int]] = {}
        for index in members[1:]:
            by_vector.setdefault(representative.get(index, index), []).append(index)
        for rep, indexes in by_vector.items():
            similarity = 1.0 if rep == head else round(cosine(vectors[rep][2], head_vector), 4)
            marks.extend((index, head_id, similarity) for index in indexes)
        if len(marks) >= MARK_CHUNK:
            mark_near_duplicates(job_id, marks)
            marks = []
    mark_near_duplicates(job_id, marks)
    groups.sort(key=lambda members: members[0])
    return groups
