"""Errors as RFC 9457 problem details, and the error answers each route documents."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, code: str,
                 headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.status, self.title, self.detail, self.code = status, title, detail, code
        self.headers = headers or {}
        self.extra = extra or {}


class ProblemOut(BaseModel):
    """An error (RFC 9457): `code` is stable, `detail` says what was wrong and what to do."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str
    errors: list[dict] | None = None  # request validation: one entry per bad field


async def problem_handler(request: Request, exc: Problem) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status, headers=exc.headers, media_type=PROBLEM_MEDIA_TYPE,
        content={"type": f"https://lipdub.dev/problems/{exc.code}", "title": exc.title,
                 "status": exc.status, "detail": exc.detail, "code": exc.code,
                 "instance": str(request.url.path), **exc.extra})


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, "Not found", f"No {what} '{ident[:100]}'.", "not_found")


_DESCRIPTIONS = {
    400: "The request cannot be carried out as given (or its body cannot be parsed)",
    401: "No valid API key (missing, malformed, unknown or revoked)",
    404: "No such resource for this tenant (another tenant's does not exist for you)",
    409: "Conflicts with the resource's state (or an Idempotency-Key reused with another "
         "body)",
    413: "The body is larger than its limit (1 MiB for JSON; uploads: the configured size)",
    422: "A field is missing, malformed or out of range, or names an input that is not yours",
    429: "Too many jobs in flight for this tenant: see Retry-After",
    503: "A part of the platform (database, object store, broker) is unavailable: see "
         "Retry-After",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, all problem details."""
    return {status: {"description": _DESCRIPTIONS[status],
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {
                         "$ref": "#/components/schemas/ProblemOut"}}}}
            for status in statuses}
