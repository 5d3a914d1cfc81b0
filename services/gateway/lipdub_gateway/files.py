"""Stored objects as HTTP responses: a local store's file served by the gateway (range
requests included, so players can seek), an S3 object by a presigned redirect."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fastapi import Response
from fastapi.responses import FileResponse, RedirectResponse

from lipdub.storage import LocalStore, ObjectStore

MEDIA_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska",
               "mxf": "application/mxf", "zip": "application/zip", "json": "application/json",
               "wav": "audio/wav"}


def stored_response(store: ObjectStore, key: str, filename: str | None = None,
                    inline: bool = False) -> Response:
    extension = key.rsplit(".", 1)[-1].lower()
    if isinstance(store, LocalStore):
        return FileResponse(store.local_path(key),
                            media_type=MEDIA_TYPES.get(extension, "application/octet-stream"),
                            filename=filename, content_disposition_type="inline" if inline
                            else "attachment")
    return RedirectResponse(store.url(key), status_code=307)


def stored_json(store: ObjectStore, key: str) -> bytes:
    """A small stored JSON document's bytes (a QC report)."""
    with tempfile.TemporaryDirectory(prefix="lipdub-json-") as folder:
        path = Path(folder) / "document.json"
        store.get_file(key, path)
        data = path.read_bytes()
    json.loads(data)  # a damaged document fails here, not in the caller's parser
    return data
