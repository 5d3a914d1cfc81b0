"""Jobs: submit, read, list, cancel, fetch the result, and the webhook delivery log."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from lipdub.db.models import JobState, WebhookDelivery
from lipdub.jobs.service import JobRequest, list_jobs, request_cancel
from lipdub_gateway.admission import admit
from lipdub_gateway.deps import Caller, Db, IdempotencyKey, OwnedJob, State
from lipdub_gateway.files import MEDIA_TYPES, stored_json, stored_response
from lipdub_gateway.problems import Problem, problem_responses
from lipdub_gateway.schemas import DeliveryOut, JobCreate, JobOut, JobPage, QCReportOut

router = APIRouter(prefix="/v1/jobs", tags=["jobs"],
                   responses=problem_responses(400, 401, 413, 422, 503))


@router.post("", status_code=201, responses={
    **problem_responses(409, 429),
    200: {"model": JobOut, "description": "A replay: the job first made with this "
          "Idempotency-Key and body"}})
async def submit(body: JobCreate, state: State, tenant: Caller, response: Response,
                 idempotency_key: IdempotencyKey = None) -> JobOut:
    request = JobRequest(body.video, body.audio, body.options.model_dump(mode="json"),
                         body.webhook_url, body.metadata)
    job, created = await run_in_threadpool(admit, state, request, body.input_uris(),
                                           tenant, idempotency_key)
    if not created:
        response.status_code = 200
    return job


@router.get("/{job_id}", responses=problem_responses(404))
def read(job: OwnedJob) -> JobOut:
    return JobOut.of(job)


@router.get("")
def index(session: Db, tenant: Caller, state: JobState | None = None,
          cursor: Annotated[str | None, Query(max_length=64)] = None,
          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JobPage:
    jobs, next_cursor = list_jobs(session, tenant.id, state, cursor, limit)
    return JobPage(jobs=[JobOut.of(j) for j in jobs], next_cursor=next_cursor)


@router.post("/{job_id}/cancel", responses=problem_responses(404))
def cancel(job: OwnedJob, session: Db, state: State) -> JobOut:
    was_terminal = job.state.terminal
    job = request_cancel(session, job.tenant_id, job.id)
    if job.state.terminal and not was_terminal:  # ended here: no worker will clean up
        state.context.ended_here(session, job)
    return JobOut.of(job)


@router.get("/{job_id}/result", response_model=None, responses={
    **problem_responses(404, 409),
    200: {"description": "The result file (local store)",
          "content": {t: {} for t in MEDIA_TYPES.values()}},
    307: {"description": "Redirect to a presigned URL (S3)"}})
def result(job: OwnedJob, state: State,
           copy: Literal["result", "review"] = "result") -> Response:
    """The result; `copy=review`: a master's H.264 review copy, when the job made one."""
    if job.state is not JobState.SUCCEEDED or not job.result_key:
        raise Problem(409, "No result yet", f"Job '{job.id}' is {job.state}.", "no_result")
    key = job.result_key if copy == "result" else (job.work or {}).get("review")
    if key is None:
        raise Problem(404, "No review copy", f"Job '{job.id}' made no review copy (ask "
                      "for one with options.review_copy).", "no_review_copy")
    return stored_response(state.context.store, key,
                           f"{job.id}{'-review' if copy == 'review' else ''}"
                           f".{key.rsplit('.', 1)[-1]}")


@router.get("/{job_id}/qc", responses=problem_responses(404, 409))
def qc(job: OwnedJob, state: State) -> QCReportOut:
    """The QC report: per shot (and per character of a cast), how well the mouth follows
    the new line and where the blend shows, with the flags a reviewer looks at first."""
    key = (job.work or {}).get("qc")
    if key is None:
        if job.state.terminal:
            raise Problem(404, "No QC report", f"Job '{job.id}' has no QC report (patch "
                          "jobs and failed jobs have none, nor any job while "
                          "LIPDUB_QC_ENABLED is off).", "no_qc")
        raise Problem(409, "No QC report yet", f"Job '{job.id}' is {job.state}; QC runs "
                      "after the encode stage.", "no_qc_yet")
    return QCReportOut.model_validate_json(stored_json(state.context.store, key))


@router.get("/{job_id}/webhooks", responses=problem_responses(404))
def deliveries(job: OwnedJob, session: Db) -> list[DeliveryOut]:
    rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id)
                           .order_by(WebhookDelivery.id))
    return [DeliveryOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{job_id}/webhooks/redeliver", responses=problem_responses(404, 409))
def redeliver(job: OwnedJob, session: Db, state: State) -> DeliveryOut:
    if not job.webhook_url or not job.state.terminal:
        raise Problem(409, "Nothing to deliver", "The job has no webhook or is not finished.",
                      "nothing_to_deliver")
    return DeliveryOut.model_validate(state.context.notify(session, job),
                                      from_attributes=True)
