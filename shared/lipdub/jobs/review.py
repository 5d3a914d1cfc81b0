"""Review: a reviewer approves or rejects each shot of a dub (each face of a cast's shot)
with a reason and a severity, and re-runs rejected shots with other options as a new
version of the job, whose approved shots are kept as they were. The job's review state
follows from the latest decision on every shot QC measured."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from lipdub.db.models import Job, JobState, ShotReview
from lipdub.errors import BadOptionError


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class Reason(StrEnum):
    SYNC = "sync"
    SEAM = "seam"
    TEETH = "teeth"
    IDENTITY = "identity"
    WRONG_SPEAKER = "wrong_speaker"
    OTHER = "other"


class Severity(StrEnum):
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class ReviewState(StrEnum):
    PENDING = "pending"  # some shot has no decision yet
    CHANGES_REQUESTED = "changes_requested"  # some shot is rejected
    APPROVED = "approved"  # every shot is approved


# Options a re-run may change (the rest are the job's own): what a reviewer reaches for.
RERUN_OPTIONS = ("engine", "face", "identity", "blend")


@dataclass(frozen=True)
class ShotRef:
    shot: int
    face: str = ""


def qc_shots(job: Job) -> list[dict]:
    """The shots QC measured: {shot, face, start, stop, flags} (output frames)."""
    return list((job.work or {}).get("qc_shots", []))


def _latest(session: Session, job: Job) -> dict[ShotRef, ShotReview]:
    rows = session.scalars(select(ShotReview).where(ShotReview.job_id == job.id)
                           .order_by(ShotReview.id))
    return {ShotRef(r.shot, r.face): r for r in rows}


def record_decision(session: Session, job: Job, ref: ShotRef, decision: Decision,
                    reason: Reason | None = None, severity: Severity | None = None,
                    comment: str | None = None) -> tuple[str, dict]:
    """Records one decision; (the review state before, the review after). A rejection needs its
    reason; the shot must be one QC measured."""
    if job.state is not JobState.SUCCEEDED or not qc_shots(job):
        raise BadOptionError(f"Job '{job.id}' has no shots to review.",
                             "Review a finished dub (its QC report lists the shots).")
    if {"shot": ref.shot, "face": ref.face} not in [{"shot": s["shot"], "face": s["face"]}
                                                     for s in qc_shots(job)]:
        raise BadOptionError(f"Shot {ref.shot}{f' ({ref.face})' if ref.face else ''} is "
                             f"not a dubbed shot of job '{job.id}'.",
                             "Name a shot from its QC report.")
    if decision is Decision.REJECTED and reason is None:
        raise BadOptionError("A rejection needs its reason.",
                             f"Give one of: {', '.join(r.value for r in Reason)}.")
    before = review_state(session, job)["state"]
    session.add(ShotReview(job_id=job.id, shot=ref.shot, face=ref.face,
                           decision=decision.value,
                           reason=reason.value if reason else None,
                           severity=severity.value if severity else None, comment=comment))
    session.commit()
    return before, review_state(session, job)


def review_state(session: Session, job: Job) -> dict:
    """{state, shots: each measured shot with its QC flags and current decision,
    versions: this job's line of versions, oldest first}."""
    latest = _latest(session, job)
    shots = []
    for shot in qc_shots(job):
        row = latest.get(ShotRef(shot["shot"], shot["face"]))
        shots.append({**shot, "decision": row.decision if row else None,
                      "reason": row.reason if row else None,
                      "severity": row.severity if row else None,
                      "comment": row.comment if row else None,
                      "carried_from": row.carried_from if row else None})
    decisions = [s["decision"] for s in shots]
    if Decision.REJECTED in decisions:
        state = ReviewState.CHANGES_REQUESTED
    elif decisions and all(d == Decision.APPROVED for d in decisions):
        state = ReviewState.APPROVED
    else:
        state = ReviewState.PENDING
    return {"job": job.id, "version": job.version, "state": state.value, "shots": shots,
            "versions": versions(session, job)}


def versions(session: Session, job: Job) -> list[dict]:
    """Every version of the job's line: from the first, through this one, to its newest
    descendants (a version is made from one job; each job may have several)."""
    first = job
    while first.base_job_id is not None:
        base = session.get(Job, first.base_job_id)
        if base is None or base.tenant_id != job.tenant_id:
            break
        first = base
    line, frontier = [first], [first.id]
    while frontier:
        children = session.scalars(select(Job).where(Job.base_job_id.in_(frontier),
                                                     Job.tenant_id == job.tenant_id)
                                   .order_by(Job.created_at)).all()
        line += children
        frontier = [c.id for c in children]
    return [{"id": j.id, "version": j.version, "state": j.state.value,
             "base_job": j.base_job_id} for j in line]


def version_options(job: Job, shots: list[ShotRef], overrides: dict) -> dict:
    """A new version's options: the job's own, the reviewer's overrides, and ranges that
    cover just the re-run shots (everything else comes from this job's result)."""
    measured = {(s["shot"], s["face"]): s for s in qc_shots(job)}
    spans = set()
    for ref in shots:
        found = [s for (shot, _), s in measured.items() if shot == ref.shot] \
            if not ref.face else [measured.get((ref.shot, ref.face))]
        if not found or found[0] is None:
            raise BadOptionError(f"Shot {ref.shot} is not a dubbed shot of job '{job.id}'.",
                                 "Name shots from its QC report.")
        spans |= {(s["start"], s["stop"]) for s in found}
    unknown = set(overrides) - set(RERUN_OPTIONS)
    if unknown:
        raise BadOptionError(f"A re-run cannot change {', '.join(sorted(unknown))}.",
                             f"It may change: {', '.join(RERUN_OPTIONS)}.")
    ranges = [f"{start}f-{stop}f" for start, stop in sorted(spans)]
    options = {k: v for k, v in job.options.items() if k not in ("ranges", "reuse_analysis")}
    return {**options, **overrides, "ranges": ranges, "base_job": job.id}


def carry_decisions(session: Session, base: Job, version: Job, rerun: list[ShotRef]) -> None:
    """The shots a version does not re-run keep their approvals (rejections stay with the
    version they were made on)."""
    again = {r.shot for r in rerun if not r.face} | {(r.shot, r.face) for r in rerun if r.face}
    for ref, row in _latest(session, base).items():
        if row.decision != Decision.APPROVED or ref.shot in again or (ref.shot, ref.face) \
                in again:
            continue
        session.add(ShotReview(job_id=version.id, shot=ref.shot, face=ref.face,
                               decision=row.decision, reason=row.reason,
                               severity=row.severity, comment=row.comment,
                               carried_from=base.id))
    session.commit()


def base_result(session: Session, job: Job) -> str:
    """The result key of the job a version was made from (the tenant's, finished)."""
    base = session.get(Job, job.base_job_id) if job.base_job_id else None
    if base is None or base.tenant_id != job.tenant_id or base.result_key is None:
        raise BadOptionError(f"The job this version re-runs ({job.options.get('base_job')}) "
                             "has no result any more.", "Make the version from a job that "
                             "finished and still has its result.")
    return base.result_key
