"""Review actions shared by the REST routes and the console: a decision on a shot (and
the webhook when it changes the job's review state), a new version re-running shots."""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lipdub.db.models import Job, ShotReview
from lipdub.errors import BadOptionError
from lipdub.jobs.keys import TenantRef
from lipdub.jobs.review import (
    Decision,
    Reason,
    Severity,
    ShotRef,
    carry_decisions,
    record_decision,
    version_options,
)
from lipdub.jobs.service import JobRequest, get_job
from lipdub_gateway.admission import admit
from lipdub_gateway.problems import Problem
from lipdub_gateway.schemas import JobOptions, JobOut
from lipdub_gateway.state import Gateway


def decide(state: Gateway, session: Session, job: Job, ref: ShotRef, decision: Decision,
           reason: Reason | None, severity: Severity | None, comment: str | None) -> dict:
    try:
        before, review = record_decision(session, job, ref, decision, reason, severity,
                                         comment)
    except BadOptionError as exc:
        raise Problem(422, "Cannot record the review", str(exc), exc.code) from exc
    if review["state"] not in (before, "pending"):
        serial = session.scalar(select(func.count()).select_from(ShotReview)
                                .where(ShotReview.job_id == job.id))
        state.context.notify_review(session, job, review, int(serial or 0))
    return review


def new_version(state: Gateway, tenant: TenantRef, job: Job, shots: list[int],
                overrides: dict) -> JobOut:
    """A new job re-running `shots` of `job` with `overrides`; approvals of the shots it
    keeps are carried over."""
    refs = [ShotRef(shot) for shot in sorted(set(shots))]
    try:
        options = version_options(job, refs, overrides)
        # The same rules as a submitted job's options (a cast and a face, an engine...).
        JobOptions.model_validate({k: v for k, v in options.items() if k != "base_job"})
    except BadOptionError as exc:
        raise Problem(422, "Cannot make the version", str(exc), exc.code) from exc
    except ValidationError as exc:
        raise Problem(422, "Cannot make the version", str(exc.errors()[0]["msg"]),
                      "bad_option") from exc
    inputs = [job.video_uri, *([job.audio_uri] if job.audio_uri else [])]
    made, _ = admit(state, JobRequest(job.video_uri, job.audio_uri, options, job.webhook_url,
                                      job.job_metadata), inputs, tenant, None)
    with state.context.sessions() as session:
        carry_decisions(session, get_job(session, tenant.id, job.id),
                        get_job(session, tenant.id, made.id), refs)
    return made
