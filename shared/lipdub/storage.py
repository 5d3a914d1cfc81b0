"""Object storage: a local folder (embedded default) or any S3-compatible endpoint (boto3).
Keys are laid out per tenant; results are never overwritten in place."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol


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

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the store: {key!r}")
        return path

    def put_stream(self, key: str, stream: BinaryIO) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            size = os.path.getsize(tmp)
            os.replace(tmp, target)  # atomic: readers see all of it or nothing
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def put_file(self, key: str, path: Path) -> None:
        with path.open("rb") as f:
            self.put_stream(key, f)

    def get_file(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def url(self, key: str, expires_s: int = 3600) -> str | None:
        return None  # served by the gateway itself

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise OSError(f"storage folder {self.root} is not writable")


class S3Store:
    def __init__(self, bucket: str, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    def put_stream(self, key: str, stream: BinaryIO) -> int:
        # upload_fileobj streams in parts; the object appears only when complete.
        counter = _CountingReader(stream)
        self.client.upload_fileobj(counter, self.bucket, key)
        return counter.count

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    def get_file(self, key: str, path: Path) -> None:
        self.client.download_file(self.bucket, key, str(path))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str, expires_s: int = 3600) -> str | None:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s)

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    # Direct uploads: the client PUTs parts straight to S3 on presigned URLs, so film-sized
    # files never pass through the gateway.
    def start_multipart(self, key: str) -> str:
        return self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]

    def part_urls(self, key: str, upload_id: str, parts: int, expires_s: int) -> list[str]:
        return [self.client.generate_presigned_url(
            "upload_part", Params={"Bucket": self.bucket, "Key": key, "UploadId": upload_id,
                                   "PartNumber": n}, ExpiresIn=expires_s)
            for n in range(1, parts + 1)]

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> int:
        """Assemble the parts (in order) and return the object's size."""
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag}
                                       for n, etag in enumerate(etags, start=1)]})
        return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]

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


def tenant_key(tenant_id: str, *parts: str) -> str:
    return "/".join(["tenants", tenant_id, *parts])


def store_from_settings(settings) -> ObjectStore:  # noqa: ANN001 - lipdub.config.Settings
    if settings.s3_bucket:
        return S3Store(settings.s3_bucket, settings.s3_endpoint_url)
    return LocalStore(settings.storage_dir)
