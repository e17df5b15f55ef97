"""The uploads folder (UPLOAD_FOLDER): the only code that touches it.

Files get names this module makes (`<prefix>-<random>.<extension>`), never a
client's: a name is checked against that pattern before it becomes a path, so
nothing a client sends can reach outside the folder. A file is written to a
temporary name in the same folder and renamed into place (atomic on POSIX),
so a crash leaves a stray temporary file at worst, never a half-written photo.
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from pathlib import Path

from flask import current_app

NAME = re.compile(r"[a-z0-9]{1,32}-[a-f0-9]{32}\.[a-z0-9]{1,8}")
TEMPORARY_PREFIX = ".partial-"


def folder() -> Path:
    path = Path(current_app.config["UPLOAD_FOLDER"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _path(name: str) -> Path:
    """The path of a stored file; refuses anything that is not a name this module made."""
    if not NAME.fullmatch(name):
        raise ValueError(f"not a stored file name: {name!r}")
    return folder() / name


def save(data: bytes, *, prefix: str, extension: str) -> str:
    """Store `data` under a new server-made name (atomically) and return the name."""
    name = f"{prefix}-{secrets.token_hex(16)}.{extension}"
    target = _path(name)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=TEMPORARY_PREFIX)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)
    return name


def _sync_folder(path: Path) -> None:
    """Make the rename itself durable (the folder's entry), where the platform allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def read(name: str) -> bytes | None:
    """The stored file's bytes, or None when it is missing."""
    try:
        return _path(name).read_bytes()
    except FileNotFoundError:
        return None


def delete(name: str) -> None:
    """Remove a stored file (already gone is fine)."""
    with contextlib.suppress(FileNotFoundError):
        _path(name).unlink()
