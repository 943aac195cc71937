"""Where output files live: a small interface, local disk today, S3-compatible stores later.

Keys are relative, slash-separated paths chosen by the worker (``new_output_key``); URLs are absolute,
``{base_url}/files/{key}``, served by the API's files route for local storage.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import quote, unquote, urlparse

from framecast.errors import ConfigError

__all__ = ["LocalStorage", "Storage", "new_output_key", "open_storage"]


class Storage(Protocol):
    def put(self, key: str, src: Path, content_type: str) -> int:
        """Store a copy of ``src`` under ``key``; returns its size in bytes."""
        ...

    def url(self, key: str, base_url: str) -> str: ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine, for the API to serve; ``None`` if missing or not stored locally."""
        ...

    def delete(self, key: str) -> None: ...


def new_output_key(job_id: str, attempt: int) -> str:
    """An unguessable key: knowing a request id is not enough to fetch its video."""
    return f"{secrets.token_urlsafe(16)}/{job_id}-a{attempt}.mp4"


def check_key(key: str) -> str:
    """A key is a relative path of plain segments: no ``..``, no absolute path, no backslash."""
    bad = not key or "\\" in key or "\x00" in key or PurePosixPath(key).is_absolute()
    if bad or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid file key {key!r}")
    return key


class LocalStorage:
    """Files on local disk under ``root``; writes are atomic (temp file in the same folder, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, src: Path, content_type: str) -> int:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest.stat().st_size

    def url(self, key: str, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/files/{quote(check_key(key))}"

    def local_path(self, key: str) -> Path | None:
        try:
            path = self._path(key)
        except ValueError:
            return None
        return path if path.is_file() else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # Drop the key's private folder once empty; never climb above root.
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"invalid file key {key!r}")  # a symlink pointing out of root
        return path


def open_storage(url: str) -> Storage:
    """``file:///abs/path`` (or a bare path) → LocalStorage; ``s3://`` is planned, not built."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"storage URL {url!r}: file URLs take no host; write file:///absolute/path")
        path = unquote(parsed.path) if parsed.scheme else url
        if not path:
            raise ConfigError(f"storage URL {url!r} names no folder")
        return LocalStorage(Path(path))
    if parsed.scheme == "s3":
        raise ConfigError(
            f"storage URL {url!r}: S3 storage is not implemented yet; use file:///path (the default)"
        )
    raise ConfigError(f"storage URL {url!r}: unknown scheme {parsed.scheme!r}; use file:///path")
