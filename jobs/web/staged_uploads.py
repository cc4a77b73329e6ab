"""Files kept between the upload page's Preview and its Submit.

A browser cannot pre-fill a file input, so without this the user would pick the file again
after correcting the mapping. The previewed file is copied under ZENITH_STAGED_UPLOAD_DIR
as `<user pk>-<token>.data` (+ `.json` with its name): the token is unguessable and the
user's key is part of the path, so another user's token finds nothing. Each file is bounded
by ZENITH_MAX_UPLOAD_BYTES, a user keeps at most MAX_PER_USER, and files older than
ZENITH_STAGED_UPLOAD_SECONDS (default an hour) are removed whenever a new one is staged.

Several web replicas need this directory on a shared volume (or session affinity); when the
file is not found the page asks for it again, which is never worse than not keeping it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

MAX_PER_USER = 5
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclasses.dataclass
class StagedUpload:
    token: str
    name: str
    size: int
    path: Path


def staging_dir() -> Path:
    return Path(settings.ZENITH_STAGED_UPLOAD_DIR)


def _ttl() -> float:
    return float(settings.ZENITH_STAGED_UPLOAD_SECONDS)


def _owner(user: Any) -> str:
    # The key only ever names a file; anything but [A-Za-z0-9] is dropped so it cannot
    # make a path (custom user models may have string or UUID keys).
    return re.sub(r"[^A-Za-z0-9]", "", str(user.pk))


def _paths(user: Any, token: str) -> tuple[Path, Path]:
    base = staging_dir() / f"{_owner(user)}-{token}"
    return base.with_suffix(".data"), base.with_suffix(".json")


def stage(user: Any, upload: UploadedFile) -> StagedUpload:
    """Copies the upload (chunk by chunk, never all in memory) and returns its token."""
    if upload.size is not None and upload.size > settings.ZENITH_MAX_UPLOAD_BYTES:
        raise ValueError(f"The file is larger than {settings.ZENITH_MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    sweep()
    directory = staging_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(24)
    data, meta = _paths(user, token)
    partial = data.with_suffix(".part")
    size = 0
    with open(partial, "wb") as out:
        for chunk in upload.chunks():
            size += len(chunk)
            out.write(chunk)
    os.replace(partial, data)
    name = os.path.basename(upload.name or "upload")[:255]
    meta.write_text(json.dumps({"name": name, "size": size, "created": time.time()}))
    _keep_newest(user)
    return StagedUpload(token, name, size, data)


def get(user: Any, token: str | None) -> StagedUpload | None:
    """The user's staged file for the token; None when unknown, another user's, or expired."""
    if not token or not _TOKEN.match(token) or not getattr(user, "pk", None):
        return None
    data, meta = _paths(user, token)
    try:
        info = json.loads(meta.read_text())
        size = data.stat().st_size
    except (OSError, ValueError):
        return None
    if time.time() - float(info.get("created", 0)) > _ttl():
        discard(user, token)
        return None
    return StagedUpload(token, str(info.get("name") or "upload"), size, data)


def discard(user: Any, token: str | None) -> None:
    if not token or not _TOKEN.match(token):
        return
    for path in _paths(user, token):
        path.unlink(missing_ok=True)


def sweep(now: float | None = None) -> int:
    """Removes staged files older than the time to live; returns how many were removed."""
    directory = staging_dir()
    if not directory.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - _ttl()
    removed = 0
    for path in directory.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += path.suffix == ".data"
        except OSError:
            continue  # removed by a concurrent sweep
    return removed


def _keep_newest(user: Any) -> None:
    """A user previewing many files keeps only the newest few on disk."""
    def age(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    owned = sorted(staging_dir().glob(f"{_owner(user)}-*.data"), key=age, reverse=True)
    for data in owned[MAX_PER_USER:]:
        data.unlink(missing_ok=True)
        data.with_suffix(".json").unlink(missing_ok=True)
