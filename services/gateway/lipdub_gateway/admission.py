"""Admitting a job (a dub or an identity's training): inputs, webhook and identity checked,
the job recorded (idempotently, within the tenant's limit) and enqueued. All of it blocking
work, done in one worker-thread hop."""

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


def admit(state: Gateway, request: JobRequest, inputs: list[str], tenant: TenantRef,
          idempotency_key: str | None) -> tuple[JobOut, bool]:
    """(the job, whether it is new)."""
    settings = state.settings
    with state.context.sessions() as session:
        for uri in inputs:
            try:
                state.context.inputs.check(uri, tenant.id, session, state.context.check_target)
            except (InputNotAvailableError, UploadNotReadyError) as exc:
                raise Problem(422, "Input not available", str(exc), exc.code) from exc
        if request.webhook_url:
            state.context.check_target(request.webhook_url)
        identity = request.options.get("identity")
        if request.kind == "dub" and identity:
            try:
                get_identity(session, tenant.id, identity)
            except IdentityNotFoundError as exc:
                raise Problem(422, "Unknown identity", str(exc), exc.code) from exc
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
