"""Job records: create (idempotently), read, list, cancel, and every state transition
recorded as an event."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lipdub.db.models import Job, JobEvent, JobState, Tenant, is_id, utcnow


class IdempotencyConflictError(Exception):
    """The same Idempotency-Key was used before with a different request."""


class JobNotFoundError(Exception):
    pass


class TooManyJobsError(Exception):
    """The tenant already has its limit of jobs queued or running."""

    def __init__(self, in_flight: int) -> None:
        super().__init__(f"{in_flight} jobs are already in flight for this tenant.")
        self.in_flight = in_flight


class InvalidTransitionError(Exception):
    pass


@dataclass(frozen=True)
class JobRequest:
    video_uri: str
    audio_uri: str | None
    options: dict
    webhook_url: str | None = None
    metadata: dict | None = None
    kind: str = "dub"

    def fingerprint(self) -> str:
        body = json.dumps({"kind": self.kind, "video": self.video_uri, "audio": self.audio_uri,
                           "options": self.options, "webhook": self.webhook_url,
                           "metadata": self.metadata or {}}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()


def create_job(session: Session, tenant_id: str, request: JobRequest,
               idempotency_key: str | None = None,
               max_in_flight: int | None = None) -> tuple[Job, bool]:
    """(job, created). The same key and body returns the first job; another body raises.
    A new job beyond `max_in_flight` queued or running jobs raises TooManyJobsError (a
    replay of an existing job does not count as new).

    Admissions of one tenant are serialised: the transaction first writes the tenant's row
    (a row lock on PostgreSQL, the database's write lock on SQLite), so the key look-up and
    the in-flight count that follow cannot both be passed by two concurrent requests."""
    fingerprint = request.fingerprint()
    session.commit()  # end any read transaction: the lock must be this one's first statement
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(id=Tenant.id)
                    .execution_options(synchronize_session=False))
    if idempotency_key is not None:
        existing = _by_idempotency_key(session, tenant_id, idempotency_key)
        if existing is not None:
            session.commit()
            return _replay(existing, fingerprint, idempotency_key)
    if max_in_flight is not None:
        in_flight = count_in_flight(session, tenant_id, max_in_flight)
        if in_flight >= max_in_flight:
            session.rollback()
            raise TooManyJobsError(in_flight)
    base = request.options.get("base_job")  # a new version of one of the tenant's jobs
    base_job = get_job(session, tenant_id, base) if base else None
    job = Job(tenant_id=tenant_id, kind=request.kind, video_uri=request.video_uri,
              audio_uri=request.audio_uri,
              options=request.options, webhook_url=request.webhook_url,
              job_metadata=request.metadata or {}, idempotency_key=idempotency_key,
              request_hash=fingerprint, state=JobState.QUEUED,
              base_job_id=base_job.id if base_job else None,
              version=base_job.version + 1 if base_job else 1)
    record_event(job, "job accepted")
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        # Only the idempotency key is unique, and the lock makes this race all but
        # impossible; should it happen anyway, the first job is the answer.
        session.rollback()
        existing = _by_idempotency_key(session, tenant_id, idempotency_key) \
            if idempotency_key is not None else None
        if existing is None:
            raise
        return _replay(existing, fingerprint, idempotency_key)
    return job, True


def _by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tenant_id == tenant_id,
                                            Job.idempotency_key == key))


def _replay(existing: Job, fingerprint: str, key: str | None) -> tuple[Job, bool]:
    if existing.request_hash != fingerprint:
        raise IdempotencyConflictError(key)
    return existing, False


# Built once: constructing the statement costs more Python than running it.
_IN_FLIGHT = select(func.count()).select_from(
    select(Job.id).where(Job.tenant_id == bindparam("tenant_id"), Job.dispatched.is_(True),
                         Job.state.in_([JobState.QUEUED, JobState.RUNNING]))
    .limit(bindparam("up_to")).subquery())


def count_in_flight(session: Session, tenant_id: str, up_to: int) -> int:
    """Queued or running jobs of the tenant, counted up to `up_to` (the limit): the cost of
    the check stays flat however many jobs a tenant has. Batch items waiting for their
    turn do not count: a batch is bounded by its own dispatching."""
    return session.scalar(_IN_FLIGHT, {"tenant_id": tenant_id, "up_to": up_to})


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id) if is_id(job_id) else None
    if job is None or job.tenant_id != tenant_id:  # another tenant's job does not exist
        raise JobNotFoundError(job_id)
    return job


def list_jobs(session: Session, tenant_id: str, state: JobState | None = None,
              cursor: str | None = None, limit: int = 50) -> tuple[list[Job], str | None]:
    """Newest first; `cursor` is the id of the last job of the previous page."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    if state is not None:
        query = query.where(Job.state == state)
    if cursor is not None:
        anchor = session.get(Job, cursor)
        if anchor is not None and anchor.tenant_id == tenant_id:
            query = query.where((Job.created_at < anchor.created_at)
                                | ((Job.created_at == anchor.created_at) & (Job.id < anchor.id)))
    jobs = list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc())
                                .limit(limit + 1)))
    more = len(jobs) > limit
    jobs = jobs[:limit]
    return jobs, (jobs[-1].id if more and jobs else None)


_ALLOWED = {
    JobState.QUEUED: {JobState.RUNNING, JobState.CANCELED, JobState.FAILED},
    JobState.RUNNING: {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED, JobState.QUEUED},
}


def transition(session: Session, job: Job, state: JobState, message: str | None = None,
               stage: str | None = None) -> None:
    if state not in _ALLOWED.get(job.state, set()):
        raise InvalidTransitionError(f"{job.state} -> {state}")
    job.state = state
    job.stage = stage if stage is not None else job.stage
    if state.terminal:
        job.phase = None
    if state is JobState.SUCCEEDED:
        job.progress = 100
    job.updated_at = utcnow()
    record_event(job, message)
    session.commit()


def record_event(job: Job, message: str | None) -> None:
    """The job's current state and stage, with why, in its event history."""
    job.events.append(JobEvent(state=job.state, stage=job.stage, message=message))


def claim(session: Session, job_id: str, lease_s: float) -> Job | None:
    """Atomically take a job to run its next stage: a queued one, a running one handed off
    between stages (no lease), or a running one whose worker's lease has run out. None when
    someone else holds it or it is finished, so a job delivered twice (broker redelivery, a
    recovery sweep) still runs once at a time."""
    now = utcnow()
    before = session.execute(select(Job.state, Job.lease_until).where(Job.id == job_id)).first()
    # One statement decides: two workers racing for the same job cannot both match.
    taken = session.execute(
        update(Job)
        .where(Job.id == job_id,
               (Job.state == JobState.QUEUED)
               | ((Job.state == JobState.RUNNING)
                  & (Job.lease_until.is_(None) | (Job.lease_until < now))))
        .values(state=JobState.RUNNING, updated_at=now,
                lease_until=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False))
    session.commit()
    if taken.rowcount != 1:
        return None
    job = session.get(Job, job_id)
    session.refresh(job)
    if before.state is JobState.QUEUED:
        record_event(job, "started")
    elif before.lease_until is not None:  # its previous worker died mid-stage
        record_event(job, "resumed after an interrupted stage")
    session.commit()
    return job


def hand_off(session: Session, job: Job, next_stage: str) -> None:
    """A stage is done: release the job for its next stage (any worker may take it)."""
    job.stage, job.phase, job.lease_until = next_stage, None, None
    session.commit()


def renew_lease(session: Session, job: Job, lease_s: float) -> None:
    job.lease_until = utcnow() + timedelta(seconds=lease_s)


def stale_jobs(session: Session, queued_for_s: float) -> list[str]:
    """Jobs that may have lost their queue message: queued or handed off between stages for
    a while, or running with an expired lease (their worker died)."""
    now = utcnow()
    # (batch items not yet dispatched wait for their turn, not for a lost message)
    waiting = ((Job.state == JobState.QUEUED) & Job.dispatched.is_(True)) | (
        (Job.state == JobState.RUNNING) & Job.lease_until.is_(None))
    return list(session.scalars(select(Job.id).where(
        (waiting & (Job.updated_at < now - timedelta(seconds=queued_for_s)))
        | ((Job.state == JobState.RUNNING) & (Job.lease_until < now)))))


def request_cancel(session: Session, tenant_id: str, job_id: str) -> Job:
    job = get_job(session, tenant_id, job_id)
    if job.state.terminal:
        return job
    if job.state is JobState.QUEUED:
        transition(session, job, JobState.CANCELED, "canceled before it started")
    elif job.lease_until is None or job.lease_until < utcnow():
        # No worker holds it (between stages, or its worker died or lost the database):
        # nobody would see the flag, so it ends here.
        transition(session, job, JobState.CANCELED, "canceled between stages")
    else:
        job.cancel_requested = True  # the worker checks this at its next progress write
        session.commit()
    return job
