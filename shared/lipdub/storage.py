"""Object storage: a local folder (embedded default) or any S3-compatible endpoint (boto3).
Keys are laid out per tenant; a published result is never written again."""

from __future__ import annotations

import errno
import functools
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar

from lipdub.errors import LipDubError
from lipdub.scratch import remove_dead_scratch

F = TypeVar("F", bound=Callable[..., Any])


class StoreUnavailableError(LipDubError):
    """The object store cannot take or give objects right now (full, read-only, down, or
    answering 5xx): worth retrying later, unlike a missing object."""

    code = "storage_unavailable"


# Local-folder faults that pass once an operator frees space or fixes permissions.
_TRANSIENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                     errno.EIO}


def _local_faults(method: F) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except OSError as exc:
            if exc.errno in _TRANSIENT_ERRNOS:
                raise StoreUnavailableError(f"The storage folder is unavailable: "
                                            f"{exc.strerror}.", "Try again later.") from exc
            raise
    return wrapper  # type: ignore[return-value]


def _s3_faults(method: F) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(*args, **kwargs)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500 or exc.response.get("Error", {}).get("Code") in (
                    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
                raise StoreUnavailableError(f"The object store answered HTTP {status}.",
                                            "Try again later.") from exc
            raise
        except (BotoCoreError, S3UploadFailedError) as exc:  # unreachable, timed out, reset
            raise StoreUnavailableError(f"The object store is unreachable: "
                                        f"{type(exc).__name__}.", "Try again later.") from exc
    return wrapper  # type: ignore[return-value]


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path) -> None: ...
    def put_stream(self, key: str, stream: BinaryIO) -> int: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def url(self, key: str, expires_s: int = 3600) -> str | None: ...
    def ping(self) -> None: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        # Objects being written: named after the writing process, so that what a killed
        # process left half-written can be told apart and removed (remove_dead_partials).
        self.partial_dir = self.root / ".partial"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the store: {key!r}")
        return path

    @_local_faults
    def put_stream(self, key: str, stream: BinaryIO) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.partial_dir, prefix=f"lipdub-put-{os.getpid()}-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            size = os.path.getsize(tmp)
            os.replace(tmp, target)  # atomic: readers see all of it or nothing
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    @_local_faults
    def put_file(self, key: str, path: Path) -> None:
        with path.open("rb") as f:
            self.put_stream(key, f)

    @_local_faults
    def get_file(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    @_local_faults
    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str, expires_s: int = 3600) -> str | None:
        return None  # served by the gateway itself

    def remove_dead_partials(self) -> int:
        return remove_dead_scratch(self.partial_dir)

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def ping(self) -> None:
        write_probe(self)


class S3Store:
    def __init__(self, bucket: str, endpoint_url: str | None = None,
                 region: str | None = None, timeout_s: float = 60.0,
                 public_endpoint_url: str | None = None) -> None:
        """`public_endpoint_url`: the address clients reach the store at, when it is not the
        one the platform uses (MinIO on a compose network: http://minio:9000 inside,
        http://localhost:9000 outside). Presigned URLs carry the host they were signed
        for, so they are signed by a client of that address."""
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        # A store that stops answering is a passing fault like one that answers 5xx: calls
        # give up after `timeout_s` (boto3 itself retries three times first).
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                   config=Config(connect_timeout=min(10.0, timeout_s),
                                                 read_timeout=timeout_s,
                                                 retries={"max_attempts": 3,
                                                          "mode": "standard"}))
        self.signer = (boto3.client("s3", endpoint_url=public_endpoint_url, region_name=region)
                       if public_endpoint_url else self.client)

    @_s3_faults
    def put_stream(self, key: str, stream: BinaryIO) -> int:
        # upload_fileobj streams in parts; the object appears only when complete.
        counter = _CountingReader(stream)
        self.client.upload_fileobj(counter, self.bucket, key)
        return counter.count

    @_s3_faults
    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    @_s3_faults
    def get_file(self, key: str, path: Path) -> None:
        self.client.download_file(self.bucket, key, str(path))

    @_s3_faults
    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    @_s3_faults
    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str, expires_s: int = 3600) -> str | None:
        return self.signer.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s)

    def ping(self) -> None:
        write_probe(self)

    # Direct uploads: the client PUTs parts straight to S3 on presigned URLs, so film-sized
    # files never pass through the gateway.
    @_s3_faults
    def start_multipart(self, key: str) -> str:
        return self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]

    def part_urls(self, key: str, upload_id: str, parts: int, expires_s: int) -> list[str]:
        return [self.signer.generate_presigned_url(
            "upload_part", Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id,
                                   "PartNumber": n}, ExpiresIn=expires_s)
            for n in range(1, parts + 1)]

    @_s3_faults
    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> int:
        """Assemble the parts (in order) and return the object's size."""
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag}
                                       for n, etag in enumerate(etags, start=1)]})
        return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

    @_s3_faults
    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)


class _CountingReader:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self.count += len(chunk)
        return chunk


def write_probe(store: ObjectStore) -> None:
    """Readiness means taking writes: a tiny object stored and removed (a full or read-only
    store fails here, where a listing or a permission check would still pass)."""
    key = f"_readiness/{uuid.uuid4().hex}"
    store.put_stream(key, io.BytesIO(b"ok"))
    store.delete(key)


def tenant_key(tenant_id: str, *parts: str) -> str:
    return "/".join(["tenants", tenant_id, *parts])


def store_from_settings(settings) -> ObjectStore:  # noqa: ANN001 - lipdub.config.Settings
    if settings.s3_bucket:
        return S3Store(settings.s3_bucket, settings.s3_endpoint_url,
                       timeout_s=settings.s3_timeout_s,
                       public_endpoint_url=settings.s3_public_endpoint_url)
    return LocalStore(settings.storage_dir)
