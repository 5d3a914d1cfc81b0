"""Direct uploads for film-sized files: the platform opens an S3 multipart upload and hands
out presigned part URLs; the client PUTs the parts straight to S3 and then completes. The
upload is usable as a job input only once complete and checked."""

from __future__ import annotations

import math
from dataclasses import dataclass

from botocore.exceptions import ClientError
from sqlalchemy.orm import Session

from lipdub.db.models import Upload, is_id, new_id
from lipdub.errors import LipDubError
from lipdub.storage import ObjectStore, S3Store, tenant_key

MIN_PART_BYTES = 8 * 1024**2  # S3's floor is 5 MiB for every part but the last
MAX_PARTS = 10_000  # S3's ceiling
URL_EXPIRES_S = 6 * 3600  # a feature film over a slow link takes hours


class DirectUploadError(LipDubError):
    code = "direct_upload_failed"


class UploadTooLargeError(LipDubError):
    code = "upload_too_large"


class UploadNotFoundError(LipDubError):
    code = "upload_not_found"


@dataclass
class DirectUpload:
    upload: Upload
    part_bytes: int
    part_urls: list[str]
    expires_s: int


def part_size(size: int) -> int:
    """The smallest whole-MiB part size (at least 8 MiB) that fits `size` in 10,000 parts."""
    mib = 1024**2
    return max(MIN_PART_BYTES, math.ceil(size / MAX_PARTS / mib) * mib)


def _s3(store: ObjectStore) -> S3Store:
    if not isinstance(store, S3Store):
        raise DirectUploadError("Direct uploads need S3 storage, and this platform stores "
                                "objects in a local folder.",
                                "Use POST /v1/uploads (a multipart form) instead.")
    return store


def start_direct_upload(session: Session, store: ObjectStore, tenant_id: str, filename: str,
                        size: int, max_bytes: int) -> DirectUpload:
    s3 = _s3(store)
    if size > max_bytes:
        raise UploadTooLargeError(f"{size} bytes is more than the {max_bytes}-byte limit.",
                                  "Split the footage, or ask the operator to raise the limit.")
    if size < 1:
        raise DirectUploadError("size_bytes must be positive.", "Give the file's size.")
    upload_id = new_id()
    key = tenant_key(tenant_id, "uploads", upload_id, filename)
    chunk = part_size(size)
    multipart_id = s3.start_multipart(key)
    row = Upload(id=upload_id, tenant_id=tenant_id, filename=filename, storage_key=key,
                 size_bytes=size, state="pending", multipart_id=multipart_id)
    session.add(row)
    session.commit()
    urls = s3.part_urls(key, multipart_id, math.ceil(size / chunk), URL_EXPIRES_S)
    return DirectUpload(row, chunk, urls, URL_EXPIRES_S)


def _pending(session: Session, tenant_id: str, upload_id: str) -> Upload:
    row = session.get(Upload, upload_id) if is_id(upload_id) else None
    if row is None or row.tenant_id != tenant_id or row.state != "pending":
        raise UploadNotFoundError(f"No direct upload '{upload_id}' is in progress.",
                                  "Start one with POST /v1/uploads/direct.")
    return row


def complete_direct_upload(session: Session, store: ObjectStore, tenant_id: str,
                           upload_id: str, etags: list[str]) -> Upload:
    s3 = _s3(store)
    row = _pending(session, tenant_id, upload_id)
    try:
        size = s3.complete_multipart(row.storage_key, row.multipart_id, etags)
    except ClientError as exc:
        raise DirectUploadError(
            f"S3 could not assemble upload '{upload_id}': "
            f"{exc.response.get('Error', {}).get('Message', exc)}.",
            "Send every part's ETag in part order, or abort and upload again.") from exc
    if size != row.size_bytes:  # what arrived is not what was announced (and checked)
        s3.delete(row.storage_key)
        session.delete(row)
        session.commit()
        raise DirectUploadError(f"The upload is {size} bytes, not the {row.size_bytes} "
                                "announced; it was discarded.", "Upload the file again.")
    row.state, row.multipart_id = "ready", None
    session.commit()
    return row


def abort_direct_upload(session: Session, store: ObjectStore, tenant_id: str,
                        upload_id: str) -> None:
    s3 = _s3(store)
    row = _pending(session, tenant_id, upload_id)
    s3.abort_multipart(row.storage_key, row.multipart_id)
    session.delete(row)
    session.commit()
