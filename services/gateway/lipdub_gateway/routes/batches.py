"""Batches: a manifest (JSON Lines or CSV) of dubs submitted as one; read, list, cancel.
Validated whole before anything is created: every bad line is reported at once."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from lipdub.jobs.batches import (
    BatchItem,
    BatchNotFoundError,
    batch_jobs,
    cancel_batch,
    create_batch,
    get_batch,
    list_batches,
)
from lipdub.jobs.keys import TenantRef
from lipdub.jobs.manifest import LineError, ManifestError, parse_manifest
from lipdub.jobs.service import IdempotencyConflictError, JobRequest
from lipdub_gateway.admission import identity_error, input_errors
from lipdub_gateway.deps import Caller, Db, IdempotencyKey, State
from lipdub_gateway.problems import Problem, not_found, problem_responses
from lipdub_gateway.schemas import BatchLine, BatchOut, BatchPage, WebhookUrl
from lipdub_gateway.state import Gateway

router = APIRouter(prefix="/v1/batches", tags=["batches"],
                   responses=problem_responses(400, 401, 413, 422, 503))
CSV_TYPES = ("text/csv", "application/csv")


@router.post("", status_code=201, responses={
    **problem_responses(409),
    200: {"model": BatchOut, "description": "A replay: the batch first made with this "
          "Idempotency-Key and manifest"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/jsonl": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}}}}})
async def submit(request: Request, state: State, tenant: Caller, response: Response,
                 webhook_url: Annotated[WebhookUrl, Query()] = None,
                 idempotency_key: IdempotencyKey = None) -> BatchOut:
    """One dub a line: video, audio, options, identity, output_name, metadata (inputs as
    upload ids or URIs). CSV: those columns, options and metadata as JSON cells."""
    data = await request.body()
    csv_format = request.headers.get("content-type", "").split(";")[0].strip() in CSV_TYPES
    batch, created = await run_in_threadpool(_admit, state, tenant, data, csv_format,
                                             webhook_url, idempotency_key)
    if not created:
        response.status_code = 200
    return batch


def _admit(state: Gateway, tenant: TenantRef, data: bytes, csv_format: bool,
           webhook_url: str | None, idempotency_key: str | None) -> tuple[BatchOut, bool]:
    try:
        lines, errors = parse_manifest(data, csv_format)
    except ManifestError as exc:
        raise _invalid(exc.errors) from exc
    with state.context.sessions() as session:
        items, item_errors = _items(state, session, tenant, lines)
        errors = sorted(errors + item_errors, key=lambda e: e.line)
        if errors:
            raise _invalid(errors)
        if webhook_url:
            state.context.check_target(webhook_url)
        try:
            batch, created = create_batch(session, tenant.id, items, webhook_url, {},
                                          idempotency_key)
        except IdempotencyConflictError as exc:
            raise Problem(409, "Idempotency key reused", "This Idempotency-Key was used "
                          "with a different manifest.", "idempotency_conflict") from exc
        if created:
            state.dispatch()
        return BatchOut.of(batch, batch_jobs(session, batch)), created


def _items(state: Gateway, session, tenant: TenantRef,  # noqa: ANN001 - Session
           lines: list[tuple[int, dict]]) -> tuple[list[BatchItem], list[LineError]]:
    """Every line checked as a job would be: its fields, its inputs (the tenant's own, or
    reachable), its identity; output names unique. All errors, not the first."""
    items, errors, names = [], [], {}
    for number, raw in lines:
        try:
            line = BatchLine.model_validate(raw)
        except ValidationError as exc:
            errors += [LineError(number, f"{'.'.join(str(p) for p in e['loc']) or 'item'}: "
                                         f"{e['msg']}") for e in exc.errors()[:5]]
            continue
        if line.output_name is not None:
            if line.output_name in names:
                errors.append(LineError(number, f"output_name '{line.output_name}' is "
                                                f"already used on line {names[line.output_name]}"))
                continue
            names[line.output_name] = number
        options = line.options.model_dump(mode="json")
        if line.identity:
            options["identity"] = line.identity
        request = JobRequest(line.video, line.audio, options, None, line.metadata)
        refused = [*input_errors(state, session, tenant.id, [line.video, line.audio]),
                   *filter(None, [identity_error(session, tenant.id, request)])]
        errors += [LineError(number, str(exc)) for exc in refused]
        if not refused:
            items.append(BatchItem(number, request, line.output_name))
    return items, errors


def _invalid(errors: list[LineError]) -> Problem:
    first = errors[0]
    where = f"line {first.line}: " if first.line else ""
    return Problem(422, "Invalid manifest",
                   f"{len(errors)} error(s) in the manifest, e.g. {where}{first.reason}. "
                   "Fix every listed line and submit again; nothing was created.",
                   "invalid_manifest",
                   extra={"errors": [{"line": e.line, "reason": e.reason} for e in errors]})


@router.get("/{batch_id}", responses=problem_responses(404))
def read(batch_id: str, session: Db, tenant: Caller) -> BatchOut:
    try:
        batch = get_batch(session, tenant.id, batch_id)
    except BatchNotFoundError as exc:
        raise not_found("batch", batch_id) from exc
    return BatchOut.of(batch, batch_jobs(session, batch))


@router.get("")
def index(session: Db, tenant: Caller,
          cursor: Annotated[str | None, Query(max_length=64)] = None,
          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> BatchPage:
    batches, next_cursor = list_batches(session, tenant.id, cursor, limit)
    return BatchPage(batches=[BatchOut.of(b, batch_jobs(session, b)) for b in batches],
                     next_cursor=next_cursor)


@router.post("/{batch_id}/cancel", responses=problem_responses(404))
def cancel(batch_id: str, session: Db, tenant: Caller, state: State) -> BatchOut:
    try:
        batch = get_batch(session, tenant.id, batch_id)
    except BatchNotFoundError as exc:
        raise not_found("batch", batch_id) from exc
    for job in cancel_batch(session, batch):
        state.context.ended_here(session, job)
    session.refresh(batch)  # its completion was recorded as its last item ended
    return BatchOut.of(batch, batch_jobs(session, batch))
