"""Admitting a job (a dub or an identity's training): inputs, webhook and identity checked,
the job recorded (idempotently, within the tenant's limit) and enqueued. All of it blocking
work, done in one worker-thread hop."""

from sqlalchemy.orm import Session

from lipdub.errors import BadOptionError, LipDubError
from lipdub.jobs.cast_work import analysis_source
from lipdub.jobs.identities import IdentityNotFoundError, get_identity
from lipdub.jobs.inputs import InputNotAvailableError, UploadNotReadyError
from lipdub.jobs.keys import TenantRef
from lipdub.jobs.service import (
    IdempotencyConflictError,
    JobRequest,
    TooManyJobsError,
    create_job,
)
from lipdub_gateway.problems import Problem
from lipdub_gateway.schemas import JobOut
from lipdub_gateway.state import Gateway


def input_errors(state: Gateway, session: Session, tenant_id: str,
                 inputs: list[str]) -> list[LipDubError]:
    """Why each input the tenant may not name is refused (not theirs, not ready, an
    unreachable URL): a job is admitted without any, a batch line too."""
    errors: list[LipDubError] = []
    for uri in inputs:
        try:
            state.context.inputs.check(uri, tenant_id, session, state.context.check_target)
        except (InputNotAvailableError, UploadNotReadyError) as exc:
            errors.append(exc)
    return errors


def identity_error(session: Session, tenant_id: str,
                   request: JobRequest) -> IdentityNotFoundError | None:
    """A dub naming an identity the tenant does not have."""
    identity = request.options.get("identity")
    if request.kind == "dub" and identity:
        try:
            get_identity(session, tenant_id, identity)
        except IdentityNotFoundError as exc:
            return exc
    return None


def admit(state: Gateway, request: JobRequest, inputs: list[str], tenant: TenantRef,
          idempotency_key: str | None) -> tuple[JobOut, bool]:
    """(the job, whether it is new)."""
    settings = state.settings
    with state.context.sessions() as session:
        refused = input_errors(state, session, tenant.id, inputs)
        if refused:
            first = refused[0]
            raise Problem(422, "Input not available", str(first), first.code) from first
        if request.webhook_url:
            state.context.check_target(request.webhook_url)
        missing = identity_error(session, tenant.id, request)
        if missing is not None:
            raise Problem(422, "Unknown identity", str(missing), missing.code) from missing
        try:
            analysis_source(session, tenant.id, request.video_uri, request.options)
        except BadOptionError as exc:
            raise Problem(422, "Unknown analysis", str(exc), exc.code) from exc
        try:
            job, created = create_job(session, tenant.id, request, idempotency_key,
                                      max_in_flight=settings.max_jobs_in_flight)
        except IdempotencyConflictError as exc:
            raise Problem(409, "Idempotency key reused", "This Idempotency-Key was used "
                          "with a different request.", "idempotency_conflict") from exc
        except TooManyJobsError as exc:
            raise Problem(429, "Too many jobs", f"{exc} Wait for some to finish, or "
                          "cancel some.", "too_many_jobs", {"Retry-After": "30"}) from exc
        if created:
            state.enqueue(job.id)
        return JobOut.of(job), created
