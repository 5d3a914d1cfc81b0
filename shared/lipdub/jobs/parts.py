"""Stages that run in parts on any number of workers (a film's lip-sync stage, segment by
segment). The database records each part: a part is claimed atomically (so two workers
never run it at once), holds a lease while it runs (a dead worker's part is claimable
again once the lease runs out), and a part that is done is never run again. When the last
part is done, the stage itself runs once more to join what the parts produced."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from lipdub.db.models import Job, JobPart, PartState, utcnow


@dataclass(frozen=True)
class PartsState:
    runnable: list[int]  # pending, or running with a lease run out (its worker died)
    results: list[dict] | None  # every part's result, in order, once all are done


def plan_parts(session: Session, job: Job, stage: str, specs: list[dict]) -> None:
    session.add_all(JobPart(job_id=job.id, stage=stage, index=i, spec=spec)
                    for i, spec in enumerate(specs))


def parts_state(session: Session, job_id: str, stage: str) -> PartsState | None:
    """None when the stage's parts are not planned yet."""
    parts = list(session.scalars(select(JobPart).where(
        JobPart.job_id == job_id, JobPart.stage == stage).order_by(JobPart.index)))
    if not parts:
        return None
    now = utcnow()
    runnable = [p.index for p in parts if p.state is PartState.PENDING or (
        p.state is PartState.RUNNING and (p.lease_until is None or p.lease_until < now))]
    done = all(p.state is PartState.DONE for p in parts)
    return PartsState(runnable,
                      [p.result or {} for p in parts] if done else None)


def claim_part(session: Session, job_id: str, stage: str, index: int,
               lease_s: float) -> JobPart | None:
    """Atomically take a part that no live worker holds and that is not done."""
    now = utcnow()
    taken = session.execute(
        update(JobPart)
        .where(JobPart.job_id == job_id, JobPart.stage == stage, JobPart.index == index,
               (JobPart.state == PartState.PENDING)
               | ((JobPart.state == PartState.RUNNING)
                  & (JobPart.lease_until.is_(None) | (JobPart.lease_until < now))))
        .values(state=PartState.RUNNING, lease_until=now + timedelta(seconds=lease_s),
                # host:pid at claim time (a pool's child, not the parent that imported us)
                runs=JobPart.runs + 1, worker=f"{socket.gethostname()}:{os.getpid()}",
                frames_done=0, updated_at=now)
        .execution_options(synchronize_session=False))
    session.commit()
    if taken.rowcount != 1:
        return None
    return session.scalar(select(JobPart).where(
        JobPart.job_id == job_id, JobPart.stage == stage, JobPart.index == index))


def renew_part(part: JobPart, lease_s: float) -> None:
    part.lease_until = utcnow() + timedelta(seconds=lease_s)
    part.updated_at = utcnow()


def finish_part(session: Session, part: JobPart, result: dict) -> bool:
    """Record a part done; True when it was the stage's last (time to join)."""
    part.state, part.result, part.lease_until = PartState.DONE, result, None
    part.updated_at = utcnow()
    session.commit()
    left = session.scalar(select(func.count()).select_from(JobPart).where(
        JobPart.job_id == part.job_id, JobPart.stage == part.stage,
        JobPart.state != PartState.DONE))
    return left == 0


def release_part(session: Session, part: JobPart) -> None:
    """Give a part back (a passing fault, or its worker stopping): any worker may take it."""
    part.state, part.lease_until = PartState.PENDING, None
    session.commit()


def frames_done(session: Session, job_id: str, stage: str) -> tuple[int, int]:
    """(frames done, frames in all) over the stage's parts: the job's progress."""
    rows = session.execute(select(JobPart.state, JobPart.frames_done, JobPart.spec).where(
        JobPart.job_id == job_id, JobPart.stage == stage)).all()
    total = sum(int(spec.get("frames", 0)) for _, _, spec in rows)
    done = sum(int(spec.get("frames", 0)) if state is PartState.DONE else n
               for state, n, spec in rows)
    return done, total
