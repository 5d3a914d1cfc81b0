"""Run one part of a parted stage (a film's segment) on this worker: claim the part, run
it with its own lease and progress, record what it produced. The job itself is not
claimed: many workers run its parts at once. A failure that is the job's ends the job; a
passing fault gives the part back for a retry; a worker stopping hands it back."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from lipdub.db.models import Job, JobPart, JobState, PartState, utcnow
from lipdub.jobs.faults import TransientFault, fault_code
from lipdub.jobs.inputs import InputAccess
from lipdub.jobs.metrics import STAGE_SECONDS, frames_advanced
from lipdub.jobs.parts import claim_part, finish_part, frames_done, release_part, renew_part
from lipdub.jobs.runner import (
    JobCanceledError,
    LeaseKeeper,
    Stage,
    StageHandedBack,
    WorkContext,
    fail,
    finish_job,
    progress_spans,
)
from lipdub.jobs.service import transition
from lipdub.progress import Throttle
from lipdub.scratch import scratch_dir
from lipdub.storage import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartOutcome:
    done: bool  # this run finished the part
    last: bool  # ... and it was the stage's last: the stage should run to join


class PartProgress:
    """Progress of a part: its frames done (the job's progress sums every part's, within
    the stage's span), its lease renewed; notices the job canceled or ended elsewhere, and
    this worker stopping."""

    def __init__(self, session: Session, job: Job, part: JobPart, lease_s: float,
                 span: tuple[int, int], should_stop: Callable[[], bool] | None,
                 min_interval_s: float = 1.0) -> None:
        self.session, self.job, self.part, self.lease_s = session, job, part, lease_s
        self.span, self.should_stop = span, should_stop
        self._throttle = Throttle(min_interval_s)

    def start(self, stage: str, total: int) -> None:
        self._write(force=True)

    def advance(self, stage: str, amount: int = 1) -> None:
        self.part.frames_done += amount
        frames_advanced(stage, amount)
        self._write()

    def finish(self, stage: str) -> None:
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        if not self._throttle.due(force):
            return
        renew_part(self.part, self.lease_s)
        self.session.commit()
        done, total = frames_done(self.session, self.job.id, self.part.stage)
        low, high = self.span
        progress = int(low + (high - low) * min(1.0, done / max(total, 1)))
        self.session.execute(update(Job).where(Job.id == self.job.id, Job.progress < progress)
                             .values(progress=progress, updated_at=utcnow()))
        self.session.commit()
        self.session.refresh(self.job, ["state", "cancel_requested"])
        if self.job.cancel_requested or self.job.state.terminal:
            raise JobCanceledError(self.job.id)
        if self.should_stop is not None and self.should_stop():
            raise StageHandedBack(self.job.id)


def run_part(job_id: str, stage_name: str, index: int, sessions: sessionmaker[Session],
             store: ObjectStore, plans: dict[str, list[Stage]], inputs: InputAccess,
             fetch_url: Callable[[str, Path], None] | None, lease_s: float,
             on_finish: Callable[[Job], None] | None,
             notify: Callable[[Session, Job], object] | None,
             should_stop: Callable[[], bool] | None = None) -> PartOutcome:
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.state is not JobState.RUNNING or job.cancel_requested:
            return PartOutcome(False, False)
        part = claim_part(session, job_id, stage_name, index, lease_s)
        if part is None:  # done, or a live worker holds it
            return PartOutcome(False, False)
        applicable = [s for s in plans[job.kind] if s.applies(job)]
        stage = next(s for s in applicable if s.name == stage_name)
        assert stage.part is not None
        span = progress_spans(applicable).get(stage.phases[0][0] if stage.phases else "",
                                              (0, 99))
        progress = PartProgress(session, job, part, lease_s, span, should_stop)

        def renew(other: Session) -> None:
            other.execute(update(JobPart).where(JobPart.id == part.id,
                                                JobPart.state == PartState.RUNNING)
                          .values(lease_until=utcnow() + timedelta(seconds=lease_s)))

        try:
            with scratch_dir("part") as tmp, LeaseKeeper(sessions, job_id, lease_s, renew):
                ctx = WorkContext(session, job, store, Path(tmp), progress, inputs, fetch_url,
                                  copy.deepcopy(job.work or {}))
                with STAGE_SECONDS.labels(stage.name).time():
                    result = stage.part(ctx, part.spec)
            return PartOutcome(True, finish_part(session, part, result))
        except StageHandedBack:
            session.rollback()
            release_part(session, part)
            return PartOutcome(False, False)
        except JobCanceledError:
            session.rollback()
            session.refresh(job)
            if not job.state.terminal:
                transition(session, job, JobState.CANCELED, "canceled while running")
                finish_job(session, job, on_finish, notify)
            return PartOutcome(False, False)
        except Exception as error:
            code = fault_code(error)
            session.rollback()
            if code is not None:
                log.warning("job %s part %s/%d: passing fault (%s): %s", job_id, stage_name,
                            index, code, error)
                release_part(session, part)
                raise TransientFault(code, str(error)) from error
            session.refresh(job)
            if not job.state.terminal:
                fail(session, job, error)
                finish_job(session, job, on_finish, notify)
            return PartOutcome(False, False)
