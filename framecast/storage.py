"""Where output files live: local disk (one machine) or any S3-compatible bucket (many machines).

Keys are relative, slash-separated paths chosen by the worker (``new_output_key``). URLs are absolute,
``{base_url}/files/{key}``: the API serves a local file there (with HTTP Range), and for a bucket answers with a
redirect to a presigned URL made at that moment, so the URL in a result never expires while its file exists. With
``FRAMECAST_STORAGE_PUBLIC_URL`` (a public bucket or a CDN in front of it) results link to the object directly.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote, urlparse

from framecast.errors import ConfigError

if TYPE_CHECKING:
    from framecast.config import Settings

__all__ = ["LocalStorage", "S3Storage", "Storage", "new_output_key", "open_storage", "storage_for"]


class Storage(Protocol):
    def put(self, key: str, src: Path, content_type: str) -> int:
        """Store a copy of ``src`` under ``key``; returns its size in bytes."""
        ...

    def url(self, key: str, base_url: str) -> str: ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine, for the API to serve; ``None`` if missing or not stored locally."""
        ...

    def redirect_url(self, key: str) -> str | None:
        """Where the API sends a client for a file it does not hold; ``None`` if there is no such file."""
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

    def redirect_url(self, key: str) -> str | None:
        return None  # local files are served by the API itself

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


class S3Storage:
    """Objects under ``prefix`` in an S3-compatible bucket (AWS S3, MinIO, R2, Ceph, ...), through boto3.

    Credentials and region come from boto3's usual sources (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
    ``AWS_REGION``, a profile, an instance role); ``endpoint_url`` points it at a store other than AWS.
    """

    def __init__(
        self, client: Any, bucket: str, prefix: str, *, public_url: str = "", url_seconds: int = 3600
    ):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.public_url = public_url.rstrip("/")
        self.url_seconds = url_seconds

    def object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, src: Path, content_type: str) -> int:
        # A PUT is atomic: readers see the old object or the whole new one, never a part.
        self.client.upload_file(
            str(src), self.bucket, self.object_key(key), ExtraArgs={"ContentType": content_type}
        )
        return Path(src).stat().st_size

    def url(self, key: str, base_url: str) -> str:
        if self.public_url:
            return f"{self.public_url}/{quote(self.object_key(key))}"
        return f"{base_url.rstrip('/')}/files/{quote(check_key(key))}"

    def local_path(self, key: str) -> Path | None:
        return None

    def redirect_url(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            name = self.object_key(key)
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ValueError:
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        params = {"Bucket": self.bucket, "Key": name}
        return str(
            self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.url_seconds)
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))


def open_storage(
    url: str, *, endpoint_url: str = "", public_url: str = "", url_seconds: int = 3600
) -> Storage:
    """``file:///abs/path`` (or a bare path) → LocalStorage; ``s3://bucket/prefix`` → S3Storage (checked now:
    a bucket that cannot be reached is a configuration error at start-up, not a failed job later)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        if parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"storage URL {url!r}: file URLs take no host; write file:///absolute/path")
        path = unquote(parsed.path) if parsed.scheme else url
        if not path:
            raise ConfigError(f"storage URL {url!r} names no folder")
        return LocalStorage(Path(path))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"storage URL {url!r} names no bucket; write s3://bucket/optional/prefix")
        client = _s3_client(endpoint_url)
        _check_bucket(client, parsed.netloc, endpoint_url)
        return S3Storage(
            client, parsed.netloc, unquote(parsed.path), public_url=public_url, url_seconds=url_seconds
        )
    raise ConfigError(
        f"storage URL {url!r}: unknown scheme {parsed.scheme!r}; use file:///path or s3://bucket"
    )


def storage_for(settings: Settings) -> Storage:
    """The file store ``settings`` configure."""
    return open_storage(
        settings.storage_url,
        endpoint_url=settings.s3_endpoint_url,
        public_url=settings.storage_public_url,
        url_seconds=settings.s3_url_seconds,
    )


def _s3_client(endpoint_url: str) -> Any:
    try:
        import boto3
    except ImportError:
        raise ConfigError("s3:// storage needs boto3: pip install 'framecast[s3]'") from None
    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _check_bucket(client: Any, bucket: str, endpoint_url: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        where = endpoint_url or "AWS"
        raise ConfigError(f"S3 bucket {bucket!r} at {where} cannot be used: {exc}") from None
