"""The claim-check codec: how a batch's items are stored in `BatchPayload`.

Items are stored once, at submission, as compact JSON compressed with zlib (level 1: the
fastest level already shrinks typical transaction records 4-6x). RQ messages carry only the
batch id, so Redis never holds payloads.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

CODEC_JSON_ZLIB = "json+zlib"
CODEC_PROJECT_TRANSACTIONS = "project-tx"  # an id range of stored transactions: jobs.datatypes.stored

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def serialize(items: list[Any]) -> bytes:
    """Canonical JSON bytes of a batch's items (also what the input checksum is taken over)."""
    return _encoder.encode(items).encode("utf-8")


def pack(serialized: bytes) -> tuple[str, bytes]:
    return CODEC_JSON_ZLIB, zlib.compress(serialized, 1)


def encode_items(items: list[Any]) -> tuple[str, bytes]:
    return pack(serialize(items))


def decode_items(codec: str, data: bytes | memoryview) -> list[Any]:
    if codec == CODEC_PROJECT_TRANSACTIONS:
        # A job over the project's stored transactions: the payload is an id range, not items.
        from .datatypes.stored import load_records

        return load_records(data)
    if codec != CODEC_JSON_ZLIB:
        raise ValueError(f"Unknown payload codec {codec!r}")
    return json.loads(zlib.decompress(bytes(data)))
