"""The claim-check codec: how a batch's items are stored in `BatchPayload`.

Items are stored once, at submission, as compact JSON compressed with zlib (level 1: the
fastest level already shrinks typical transaction records 4-6x). RQ messages carry only the
batch id, so Redis never holds payloads.

Three shapes:
- `json+zlib`: an array of records, as submitted (JSON items, JSON files, mapped imports).
- `rows+zlib`: `{"k": keys, "r": rows}` for records that are rows of one table (a canonical
  CSV or spreadsheet): each row a list of values in `keys` order, or a record of another shape
  stored as its object. The keys are written once per batch instead of once per record, which
  made a large upload's serialising and compressing much cheaper (docs/performance.md), and
  the submission never builds a dict per row.
- `csv+zlib`: a canonical CSV file's lines as they were (jobs.importing.blocks, the fast path
  of a CSV upload): a line of JSON saying how to read them, then the lines. The worker parses
  them, so the upload does not parse and re-encode each row.
All decode to the same list of records.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from typing import Any

CODEC_JSON_ZLIB = "json+zlib"
CODEC_ROWS_ZLIB = "rows+zlib"
CODEC_CSV_ZLIB = "csv+zlib"
CODEC_PROJECT_TRANSACTIONS = "project-tx"  # an id range of stored transactions: jobs.datatypes.stored_source

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def serialize(items: list[Any]) -> bytes:
    """Canonical JSON bytes of a batch's items or rows (also what the input checksum is taken over)."""
    return _encoder.encode(items).encode("utf-8")


def pack(serialized: bytes, keys: Sequence[str] | None = None) -> tuple[str, bytes]:
    """The codec and stored bytes for serialized items, or for serialized rows in `keys` order."""
    if keys is None:
        return CODEC_JSON_ZLIB, zlib.compress(serialized, 1)
    return CODEC_ROWS_ZLIB, zlib.compress(b'{"k":' + serialize(list(keys)) + b',"r":' + serialized + b"}", 1)


def pack_csv(lines: bytes, meta: bytes) -> tuple[str, bytes]:
    """The codec and stored bytes for a run of CSV lines read as `meta` says."""
    return CODEC_CSV_ZLIB, zlib.compress(meta + b"\n" + lines, 1)


_decoders: dict[str, Callable[[bytes | memoryview], list[Any]]] = {}


def register_decoder(codec: str, decode: Callable[[bytes | memoryview], list[Any]]) -> None:
    """Codecs whose decoding needs the domain (a CSV run read with the import's rules, an id
    range of stored transactions) are registered by the module that knows how, so the engine
    imports no domain code (docs/design.md, "Apps and layers")."""
    _decoders[codec] = decode


def decode_items(codec: str, data: bytes | memoryview) -> list[Any]:
    decode = _decoders.get(codec)
    if decode is not None:
        return decode(data)
    if codec == CODEC_ROWS_ZLIB:
        table = json.loads(zlib.decompress(bytes(data)))
        keys = table["k"]
        return [dict(zip(keys, row, strict=True)) if row.__class__ is list else row for row in table["r"]]
    if codec != CODEC_JSON_ZLIB:
        raise ValueError(f"Unknown payload codec {codec!r}")
    return json.loads(zlib.decompress(bytes(data)))
