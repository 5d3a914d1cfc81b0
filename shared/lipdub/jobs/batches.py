"""Batches: many dubs submitted as one manifest, each item its own job. A batch is admitted
whole or not at all (one transaction), and its jobs are dispatched a few at a time per
tenant (fair share): a tenant's 500-item batch holds at most `slots` workers' worth of
queue, so another tenant's job, dispatched at once as every single job is, starts with the
next free worker instead of after the batch."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lipdub.db.models import Batch, Job, JobState, Tenant, is_id, utcnow
from lipdub.errors import LipDubError
from lipdub.jobs.service import (
    IdempotencyConflictError,
    JobRequest,
    record_event,
    request_cancel,
)


class BatchNotFoundError(LipDubError):
    code = "batch_not_found"


@dataclass(frozen=True)
class BatchItem:
    line: int
    request: JobRequest
    output_name: str | None = None


def fingerprint(items: list[BatchItem], webhook_url: str | None, metadata: dict) -> str:
    body = json.dumps({"items": [[i.request.fingerprint(), i.output_name] for i in items],
                       "webhook": webhook_url, "metadata": metadata}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def create_batch(session: Session, tenant_id: str, items: list[BatchItem],
                 webhook_url: str | None = None, metadata: dict | None = None,
                 idempotency_key: str | None = None) -> tuple[Batch, bool]:
    """(batch, created): every item's job recorded, queued and not yet dispatched, in one
    transaction. The same key and manifest returns the first batch; another raises."""
    digest = fingerprint(items, webhook_url, metadata or {})
    session.commit()  # the tenant's row lock below must be this transaction's first write
    session.execute(update(Tenant).where(Tenant.id == tenant_id).values(id=Tenant.id)
                    .execution_options(synchronize_session=False))
    if idempotency_key is not None:
        existing = session.scalar(select(Batch).where(Batch.tenant_id == tenant_id,
                                                      Batch.idempotency_key == idempotency_key))
        if existing is not None:
            session.commit()
            if existing.fingerprint != digest:
                raise IdempotencyConflictError(idempotency_key)
            return existing, False
    batch = Batch(tenant_id=tenant_id, total=len(items), webhook_url=webhook_url,
                  batch_metadata=metadata or {}, idempotency_key=idempotency_key,
                  fingerprint=digest)
    session.add(batch)
    session.flush()
    for item in items:
        request = item.request
        job = Job(tenant_id=tenant_id, kind=request.kind, video_uri=request.video_uri,
                  audio_uri=request.audio_uri, options=request.options,
                  webhook_url=webhook_url, job_metadata=request.metadata or {},
                  batch_id=batch.id, batch_line=item.line, output_name=item.output_name,
                  dispatched=False, state=JobState.QUEUED)
        session.add(job)
        record_event(job, "job accepted (batch)")
    session.commit()
    return batch, True


def dispatch(session: Session, slots_per_tenant: int) -> list[str]:
    """Batch jobs to hand to workers now: per tenant, the oldest waiting ones, up to
    `slots_per_tenant` of its batch jobs in flight. Each is marked dispatched by one
    conditional update, so concurrent dispatchers never hand out the same job twice."""
    waiting = list(session.scalars(select(Job.tenant_id).where(
        Job.dispatched.is_(False), Job.state == JobState.QUEUED).distinct()))
    chosen: list[str] = []
    for tenant_id in waiting:
        busy = session.scalar(select(func.count()).select_from(Job).where(
            Job.tenant_id == tenant_id, Job.batch_id.is_not(None), Job.dispatched.is_(True),
            Job.state.in_([JobState.QUEUED, JobState.RUNNING])))
        free = slots_per_tenant - busy
        if free <= 0:
            continue
        candidates = session.scalars(select(Job.id).where(
            Job.tenant_id == tenant_id, Job.dispatched.is_(False),
            Job.state == JobState.QUEUED).order_by(Job.created_at, Job.batch_line)
            .limit(free))
        for job_id in list(candidates):
            won = session.execute(update(Job).where(Job.id == job_id,
                                                    Job.dispatched.is_(False))
                                  .values(dispatched=True, updated_at=utcnow())
                                  .execution_options(synchronize_session=False))
            if won.rowcount == 1:
                chosen.append(job_id)
        session.commit()
    return chosen


def get_batch(session: Session, tenant_id: str, batch_id: str) -> Batch:
    batch = session.get(Batch, batch_id) if is_id(batch_id) else None
    if batch is None or batch.tenant_id != tenant_id:  # another tenant's does not exist
        raise BatchNotFoundError(f"No batch '{batch_id}'.", "Check the id (GET /v1/batches).")
    return batch


def batch_jobs(session: Session, batch: Batch) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.batch_id == batch.id)
                                .order_by(Job.batch_line)))


def counts(jobs: list[Job]) -> dict[str, int]:
    by_state = Counter(job.state.value for job in jobs)
    return {state.value: by_state.get(state.value, 0) for state in JobState}


def cancel_batch(session: Session, batch: Batch) -> list[Job]:
    """Cancel every item not yet ended; the jobs that ended here (no worker held them)."""
    ended = []
    for job in batch_jobs(session, batch):
        if not job.state.terminal:
            request_cancel(session, batch.tenant_id, job.id)
            if job.state.terminal:
                ended.append(job)
    return ended


def complete_if_done(session: Session, batch_id: str) -> Batch | None:
    """The batch, when this call found every item ended and marked it completed (once:
    a conditional update, so two workers ending its last items cannot both)."""
    open_items = session.scalar(select(func.count()).select_from(Job).where(
        Job.batch_id == batch_id, Job.state.in_([JobState.QUEUED, JobState.RUNNING])))
    if open_items:
        return None
    won = session.execute(update(Batch).where(Batch.id == batch_id,
                                              Batch.completed_at.is_(None))
                          .values(completed_at=utcnow())
                          .execution_options(synchronize_session=False))
    session.commit()
    return session.get(Batch, batch_id) if won.rowcount == 1 else None


def list_batches(session: Session, tenant_id: str, cursor: str | None = None,
                 limit: int = 50) -> tuple[list[Batch], str | None]:
    """Newest first; `cursor` is the id of the last batch of the previous page."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if cursor is not None:
        anchor = session.get(Batch, cursor)
        if anchor is not None and anchor.tenant_id == tenant_id:
            query = query.where((Batch.created_at < anchor.created_at)
                                | ((Batch.created_at == anchor.created_at)
                                   & (Batch.id < anchor.id)))
    batches = list(session.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc())
                                   .limit(limit + 1)))
    more = len(batches) > limit
    batches = batches[:limit]
    return batches, (batches[-1].id if more and batches else None)
