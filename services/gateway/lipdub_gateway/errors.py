"""Every error answers as problem details: the platform's own errors by their code, a bad
request shape as 422, and a part of the platform that is unavailable (database, object
store, the gateway's disk) as 503 with Retry-After, never as a bare 500."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lipdub.db.models import new_id
from lipdub.errors import BadOptionError, LipDubError
from lipdub.jobs.faults import fault_code
from lipdub.jobs.inputs import InputNotAvailableError, UploadNotReadyError
from lipdub.netguard import UnsafeUrlError
from lipdub.storage import StoreUnavailableError
from lipdub_gateway.problems import Problem, ProblemOut, problem_handler

log = logging.getLogger(__name__)

# Errors about a field of the request rather than the request as a whole.
_FIELD_ERRORS = {UnsafeUrlError.code, InputNotAvailableError.code, UploadNotReadyError.code,
                 BadOptionError.code}


async def _lipdub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LipDubError)
    status = 422 if exc.code in _FIELD_ERRORS else 400
    return await problem_handler(request, Problem(status, "Bad request", str(exc), exc.code))


async def _unavailable_or_internal(request: Request, exc: Exception) -> JSONResponse:
    code = fault_code(exc)
    if code is not None:
        log.warning("%s %s: %s (%s)", request.method, request.url.path, code, exc)
        return await problem_handler(request, Problem(
            503, "Temporarily unavailable", f"{code.replace('_', ' ').capitalize()}; "
            "nothing was changed. Retry after a while.", code, {"Retry-After": "30"}))
    reference = new_id()[:12]
    log.error("%s %s failed (reference %s)", request.method, request.url.path, reference,
              exc_info=exc)
    return await problem_handler(request, Problem(
        500, "Internal error", f"An internal error occurred (reference {reference}).",
        "internal_error"))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """The framework's own answers (an unparsable body, an unknown path or method)."""
    assert isinstance(exc, StarletteHTTPException)
    codes = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}
    return await problem_handler(request, Problem(
        exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail),
        codes.get(exc.status_code, "http_error"), dict(exc.headers or {})))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()[:20]]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    return await problem_handler(request, Problem(
        422, "Invalid request", summary[:1000] or "The request is not valid.",
        "invalid_request", extra={"errors": errors}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, problem_handler)
    app.add_exception_handler(LipDubError, _lipdub_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in (StoreUnavailableError, SQLAlchemyError, OSError):
        app.add_exception_handler(error, _unavailable_or_internal)
    _document_problems(app)


def _document_problems(app: FastAPI) -> None:
    """The error answers the routes document refer to ProblemOut: add it to the schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["ProblemOut"] = \
                ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
