"""Uploads: a multipart form streamed to storage, or direct (presigned multipart) uploads
straight to S3 for film-sized files."""

from typing import Annotated

from fastapi import APIRouter, Header, Response, UploadFile

from lipdub.db.models import Upload, new_id
from lipdub.jobs.uploads import (
    UploadNotFoundError,
    UploadTooLargeError,
    abort_direct_upload,
    complete_direct_upload,
    start_direct_upload,
)
from lipdub.storage import tenant_key
from lipdub_gateway.deps import Caller, Db, State
from lipdub_gateway.problems import Problem, not_found, problem_responses
from lipdub_gateway.schemas import (
    DirectUploadComplete,
    DirectUploadCreate,
    DirectUploadOut,
    UploadOut,
)

router = APIRouter(prefix="/v1/uploads", tags=["uploads"],
                   responses=problem_responses(400, 401, 413, 422, 503))

FORM_OVERHEAD_BYTES = 64 * 1024  # a form's framing around the file


def _too_large(limit: int) -> Problem:
    return Problem(413, "Upload too large", f"Uploads are limited to {limit} bytes.",
                   "upload_too_large")


@router.post("", status_code=201, responses=problem_responses(413))
def upload(file: UploadFile, session: Db, tenant: Caller, state: State,
           content_length: Annotated[int | None, Header()] = None) -> UploadOut:
    limit = state.settings.max_upload_bytes
    if content_length is not None and content_length > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit)
    if (file.size or 0) > limit:
        raise _too_large(limit)
    upload_id = new_id()
    key = tenant_key(tenant.id, "uploads", upload_id, safe_name(file.filename))
    size = state.context.store.put_stream(key, file.file)
    row = Upload(id=upload_id, tenant_id=tenant.id, filename=(file.filename or "upload")[:255],
                 storage_key=key, size_bytes=size)
    session.add(row)
    session.commit()
    return UploadOut(id=row.id, filename=row.filename, size_bytes=row.size_bytes)


@router.post("/direct", status_code=201, responses=problem_responses(400, 413))
def start_direct(body: DirectUploadCreate, session: Db, tenant: Caller,
                 state: State) -> DirectUploadOut:
    """Upload a large file straight to S3: PUT each part (part_bytes each, the last one
    shorter) to its URL, keep each answer's ETag header, then POST them to complete."""
    try:
        direct = start_direct_upload(session, state.context.store, tenant.id,
                                     safe_name(body.filename), body.size_bytes,
                                     state.settings.max_upload_bytes)
    except UploadTooLargeError as exc:
        raise Problem(413, "Upload too large", str(exc), exc.code) from exc
    return DirectUploadOut(id=direct.upload.id, part_bytes=direct.part_bytes,
                           part_urls=direct.part_urls, expires_in_s=direct.expires_s)


@router.post("/{upload_id}/complete", responses=problem_responses(400, 404))
def complete_direct(upload_id: str, body: DirectUploadComplete, session: Db, tenant: Caller,
                    state: State) -> UploadOut:
    try:
        row = complete_direct_upload(session, state.context.store, tenant.id, upload_id,
                                     body.etags)
    except UploadNotFoundError as exc:
        raise not_found("upload in progress", upload_id) from exc
    return UploadOut(id=row.id, filename=row.filename, size_bytes=row.size_bytes)


@router.post("/{upload_id}/abort", status_code=204, responses=problem_responses(400, 404))
def abort_direct(upload_id: str, session: Db, tenant: Caller, state: State) -> Response:
    try:
        abort_direct_upload(session, state.context.store, tenant.id, upload_id)
    except UploadNotFoundError as exc:
        raise not_found("upload in progress", upload_id) from exc
    return Response(status_code=204)


def safe_name(name: str | None) -> str:
    """A file name fit to end a storage key: letters, digits and . _ - only, never a dot
    name ('.', '..') or a hidden file, at most 100 characters."""
    keep = "".join(c for c in (name or "") if c.isascii() and (c.isalnum() or c in "._-"))
    return keep[-100:].lstrip(".") or "upload"
