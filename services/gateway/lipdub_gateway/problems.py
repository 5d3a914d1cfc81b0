"""Errors as RFC 9457 problem details."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, code: str,
                 headers: dict[str, str] | None = None) -> None:
        self.status, self.title, self.detail, self.code = status, title, detail, code
        self.headers = headers or {}


async def problem_handler(request: Request, exc: Problem) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status, headers=exc.headers, media_type="application/problem+json",
        content={"type": f"https://lipdub.dev/problems/{exc.code}", "title": exc.title,
                 "status": exc.status, "detail": exc.detail, "code": exc.code,
                 "instance": str(request.url.path)})


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, "Not found", f"No {what} '{ident}'.", "not_found")
