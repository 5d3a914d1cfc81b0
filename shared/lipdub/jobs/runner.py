"""Run one stage of a job: claim it, do the stage's work, record progress and the outcome.
Idempotent: a stage that is done is never run again, and a finished job runs nothing; a
stage interrupted by a crash runs again from its start, writing the same keys."""

from __future__ import annotations

import copy
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from lipdub.db.models import Job, JobState, new_id, utcnow
from lipdub.errors import LipDubError
from lipdub.jobs.faults import TransientFault, fault_code
from lipdub.jobs.inputs import InputAccess
from lipdub.jobs.metrics import STAGE_SECONDS, frames_advanced, job_ended
from lipdub.jobs.parts import parts_state, plan_parts
from lipdub.jobs.service import claim, hand_off, record_event, renew_lease, transition
from lipdub.jobs.workfiles import local_copy, store_owned
from lipdub.progress import Throttle
from lipdub.scratch import scratch_dir
from lipdub.storage import ObjectStore, tenant_key

log = logging.getLogger(__name__)


def progress_spans(stages: list[Stage]) -> dict[str, tuple[int, int]]:
    """The share of the job's progress (0-99; 100 is done) each phase of these stages
    takes, from the weights the stages declare, in plan order."""
    phases = [phase for stage in stages for phase in stage.phases]
    total = sum(weight for _, weight in phases) or 1.0
    spans, reached = {}, 0.0
    for name, weight in phases:
        spans[name] = (round(99 * reached / total), round(99 * (reached + weight) / total))
        reached += weight
    return spans


class JobCanceledError(Exception):
    pass


class StageHandedBack(Exception):  # noqa: N818 - not an error: the worker is stopping
    """The worker is shutting down: the stage stops at its next progress write and the job
    is released, to resume at this stage on the next start (or on another worker)."""


class DbProgress:
    """ProgressSink that writes the phase and progress to the job row (at most once a
    second) and notices a cancel request there, or that its worker is stopping. `spans`:
    each phase's share of the job's progress (progress_spans)."""

    def __init__(self, session: Session, job: Job, lease_s: float,
                 spans: dict[str, tuple[int, int]], min_interval_s: float = 1.0,
                 should_stop: Callable[[], bool] | None = None) -> None:
        self.session, self.job, self.lease_s = session, job, lease_s
        self.should_stop = should_stop
        self.spans = spans
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._throttle = Throttle(min_interval_s)

    def start(self, stage: str, total: int) -> None:
        self._totals[stage], self._done[stage] = max(total, 1), 0
        self.job.phase = stage
        self._write(force=True)

    def advance(self, stage: str, amount: int = 1) -> None:
        self._done[stage] = self._done.get(stage, 0) + amount
        frames_advanced(stage, amount)
        self._write()

    def finish(self, stage: str) -> None:
        self._done[stage] = self._totals.get(stage, 1)
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        if not self._throttle.due(force):
            return
        phase = self.job.phase or ""
        if phase in self.spans:  # (a phase no stage declared moves nothing)
            low, high = self.spans[phase]
            fraction = self._done.get(phase, 0) / self._totals.get(phase, 1)
            # Never backwards: a stage run again after a fault redoes what was shown.
            self.job.progress = max(self.job.progress or 0,
                                    int(low + (high - low) * min(1.0, fraction)))
        renew_lease(self.session, self.job, self.lease_s)  # the heartbeat: still alive
        self.session.commit()
        self.session.refresh(self.job, ["cancel_requested"])
        if self.job.cancel_requested:
            raise JobCanceledError(self.job.id)
        if self.should_stop is not None and self.should_stop():
            raise StageHandedBack(self.job.id)


def _suffix(uri: str) -> str:
    """The file extension of an input, ignoring a URL's query (presigned signatures)."""
    suffix = Path(urlsplit(uri).path).suffix
    return suffix if suffix[1:].isalnum() else ""


@dataclass
class WorkContext:
    """What a stage's work gets: its job, the job's work manifest (stages done, artifact
    keys; changes are saved when the stage succeeds), a scratch folder removed after the
    stage, the progress sink, and a way to fetch any input URI into that folder."""

    session: Session
    job: Job
    store: ObjectStore
    folder: Path
    progress: DbProgress
    inputs: InputAccess
    fetch_url: Callable[[str, Path], None] | None
    work: dict = field(default_factory=dict)
    parts: list[dict] | None = None  # a parted stage's part results, when it joins them

    def fetch(self, uri: str, name: str) -> Path:
        return self.inputs.fetch(uri, self.job.tenant_id, self.session, self.store,
                                 self.folder / (name + _suffix(uri)), self.fetch_url)

    def local(self, key: str) -> Path:
        """A stored file of the job, on this machine."""
        return local_copy(self.store, self.job, key)

    def keep(self, path: Path, name: str) -> str:
        """Store a working artifact for later stages (owned by the job); its key."""
        return store_owned(self.store, self.job, self.work, path, name)


@dataclass
class WorkResult:
    result_key: str | None
    timings: dict
    message: str = "result stored"


@dataclass(frozen=True)
class Stage:
    """One step of a kind of job. Its work returns the job's result when it is the last.
    `phases`: the progress phases its work reports (ProgressSink stage names), each with
    its share of the job's work (relative weights): the job's progress bar is theirs."""

    name: str
    work: Callable[[WorkContext], WorkResult | None]
    applies: Callable[[Job], bool] = lambda _job: True  # some stages run only for some jobs
    phases: tuple[tuple[str, float], ...] = ()
    # A stage that may run in parts on many workers: `split` plans them (None: the stage
    # runs whole, as usual), `part` runs one (any worker, any order) and returns what it
    # produced; when all are done, `work` runs with ctx.parts (their results) to join them.
    split: Callable[[WorkContext], list[dict] | None] | None = None
    part: Callable[[WorkContext, dict], dict] | None = None


@dataclass(frozen=True)
class StageOutcome:
    state: JobState | None  # None: another worker holds the job
    next_stage: str | None  # what to run next; None once the job is finished
    # A parted stage waiting on its parts: those to dispatch now (empty: all are held by
    # live workers; the last to finish sends the stage on). None for any other outcome.
    parts: tuple[int, ...] | None = None


def run_stage(job_id: str, sessions: sessionmaker[Session], store: ObjectStore,
              plans: dict[str, list[Stage]],
              inputs: InputAccess | None = None,
              fetch_url: Callable[[str, Path], None] | None = None,
              notify: Callable[[Session, Job], object] | None = None,
              lease_s: float = 120.0,
              on_finish: Callable[[Job], None] | None = None,
              on_stage_done: Callable[[Session, Job, str], object] | None = None,
              should_stop: Callable[[], bool] | None = None,
              ) -> StageOutcome:
    """Claim the job and run its next stage not yet done. A stage that fails or is canceled
    ends the job (and notifies); one that succeeds hands the job off to the next stage, or,
    as the last, stores the result. A passing fault (database or store unavailable) ends
    nothing: the job is released and TransientFault raised, for the caller to retry; nor
    does `should_stop()` turning true (a worker shutting down): the job is released as it
    is, its stage to run again."""
    try:
        return _run_stage(job_id, sessions, store, plans, inputs or InputAccess(), fetch_url,
                          notify, lease_s, on_finish, on_stage_done, should_stop)
    except StageHandedBack:
        log.info("job %s: handed back, its worker is stopping", job_id)
        release(sessions, job_id, "handed back: its worker is stopping")
        return StageOutcome(JobState.RUNNING, None)
    except Exception as error:
        code = fault_code(error)
        if code is None:
            raise
        log.warning("job %s: stage interrupted by a passing fault (%s): %s", job_id, code,
                    error)
        release(sessions, job_id, f"stage interrupted ({code.replace('_', ' ')}); retrying")
        raise TransientFault(code, str(error)) from error
    except BaseException:  # the process is being torn down (SystemExit, KeyboardInterrupt)
        release(sessions, job_id, "handed back: its worker is stopping")
        raise


def release(sessions: sessionmaker[Session], job_id: str, why: str) -> None:
    """Best effort: let the retry (or any worker) claim the job at once, saying why in its
    events. Should the database itself be the fault, the lease simply runs out instead."""
    try:
        with sessions() as session:
            job = session.get(Job, job_id)
            if job is not None and job.state is JobState.RUNNING:
                job.lease_until = None
                record_event(job, why)
                session.commit()
    except Exception as exc:  # noqa: BLE001 - the retry does not depend on it
        log.warning("job %s: could not release it (%s); its lease will run out", job_id, exc)


def _run_stage(job_id: str, sessions: sessionmaker[Session], store: ObjectStore,
               plans: dict[str, list[Stage]], inputs: InputAccess,
               fetch_url: Callable[[str, Path], None] | None,
               notify: Callable[[Session, Job], object] | None, lease_s: float,
               on_finish: Callable[[Job], None] | None,
               on_stage_done: Callable[[Session, Job, str], object] | None,
               should_stop: Callable[[], bool] | None) -> StageOutcome:
    with sessions() as session:
        job = claim(session, job_id, lease_s)
        if job is None:
            existing = session.get(Job, job_id)
            state = existing.state if existing is not None and existing.state.terminal else None
            return StageOutcome(state, None)
        ctx: WorkContext | None = None
        try:
            if job.kind not in plans:
                raise LipDubError(f"This worker cannot run '{job.kind}' jobs.",
                                  "Upgrade the workers.")
            if job.cancel_requested:
                raise JobCanceledError(job.id)
            work = copy.deepcopy(job.work or {})
            done = list(work.get("done", []))
            applicable = [stage for stage in plans[job.kind] if stage.applies(job)]
            plan = [stage for stage in applicable if stage.name not in done]
            stage = plan[0]
            job.stage, job.phase = stage.name, None
            progress = DbProgress(session, job, lease_s, progress_spans(applicable),
                                  should_stop=should_stop)
            dispatch = None
            with scratch_dir("job") as tmp, LeaseKeeper(sessions, job.id, lease_s):
                ctx = WorkContext(session, job, store, Path(tmp), progress, inputs, fetch_url,
                                  work)
                if stage.split is not None:
                    dispatch = _parts_first(session, job, stage, ctx)
                if dispatch is None:
                    with STAGE_SECONDS.labels(stage.name).time():
                        result = stage.work(ctx)
                else:
                    result = None
            if dispatch is not None:
                job.lease_until = None  # nobody holds the job while its parts run
                session.commit()
                return dispatch
            ctx.work["done"] = [*done, stage.name]
            job.work = ctx.work
            flag_modified(job, "work")  # JSON: changes inside are not tracked by themselves
            if len(plan) > 1:
                hand_off(session, job, plan[1].name)
                if on_stage_done is not None:
                    on_stage_done(session, job, stage.name)
                return StageOutcome(JobState.RUNNING, plan[1].name)
            job.result_key = result.result_key if result else None
            job.timings = result.timings if result else {}
            transition(session, job, JobState.SUCCEEDED,
                       result.message if result else "done", stage="done")
        except StageHandedBack:
            session.rollback()
            raise
        except JobCanceledError:
            transition(session, job, JobState.CANCELED, "canceled while running")
        except Exception as error:
            if fault_code(error) is not None:
                session.rollback()
                raise  # not the job's failure (the store unavailable...): retried
            if should_stop is not None and should_stop() and not isinstance(error,
                                                                             LipDubError):
                # Its worker is being stopped, which can break a stage mid-call: hand the
                # stage back to run again elsewhere rather than fail the job for it.
                session.rollback()
                raise StageHandedBack(job.id) from error
            fail(session, job, error)
        if ctx is not None and job.state is not JobState.SUCCEEDED:
            # What the failed stage stored is the job's too, so it is cleaned up with it.
            job.work = {**(job.work or {}), "owned": ctx.work.get("owned", [])}
            session.commit()
        finish_job(session, job, on_finish, notify)
        return StageOutcome(job.state, None)


def _parts_first(session: Session, job: Job, stage: Stage,
                 ctx: WorkContext) -> StageOutcome | None:
    """For a stage that may run in parts: the parts to dispatch (planning them the first
    time), or None when the stage runs now: whole (`split` said so), or to join its parts,
    all done (ctx.parts holds their results)."""
    assert stage.split is not None
    state = parts_state(session, job.id, stage.name)
    if state is None:
        specs = stage.split(ctx)
        if specs is None:
            return None
        plan_parts(session, job, stage.name, specs)
        job.work = ctx.work  # what split recorded (the parts' keys, owned by the job)
        flag_modified(job, "work")
        record_event(job, f"{stage.name}: {len(specs)} parts")
        return StageOutcome(JobState.RUNNING, stage.name, tuple(range(len(specs))))
    if state.results is not None:
        ctx.parts = state.results
        return None
    return StageOutcome(JobState.RUNNING, stage.name, tuple(state.runnable))


def fail(session: Session, job: Job, error: BaseException) -> None:
    """End the job as failed: a LipDubError with its own code and message (fit for the
    job's owner), anything else as an internal error with a reference for the operator."""
    if isinstance(error, LipDubError):
        message = public_message(str(error), job.tenant_id)
        job.error_code, job.error_message = error.code, message
        transition(session, job, JobState.FAILED, message)
        return
    reference = new_id()[:12]
    log.error("job %s failed (reference %s)", job.id, reference, exc_info=error)
    job.error_code = "internal_error"
    job.error_message = (f"An internal error stopped the job (reference {reference}). "
                         "Resubmit it; if it fails again, give the operator the reference.")
    transition(session, job, JobState.FAILED, "internal error")


def finish_job(session: Session, job: Job, on_finish: Callable[[Job], None] | None,
               notify: Callable[[Session, Job], object] | None) -> None:
    """A job reached its end: clean up, then tell its receiver."""
    job_ended(job)
    if on_finish is not None:
        on_finish(job)
        session.commit()
    if notify is not None and job.webhook_url:
        notify(session, job)


_PATH = re.compile(r"(?<![:/\w])(?:/[\w.+-]+)*/([\w.+-]+)")


def public_message(text: str, tenant_id: str) -> str:
    """An error message fit for the job's owner: a worker's file paths cut to the file's
    name, storage keys without the tenant prefix, the tenant id not shown."""
    text = text.replace(tenant_key(tenant_id) + "/", "")
    return _PATH.sub(r"\1", text).replace(tenant_id, "<tenant>")


class LeaseKeeper:
    """Renews a running job's lease on its own thread and database session for as long as
    its stage runs: a long step that writes no progress (an encode, an upload) must not
    let the lease run out and the job be claimed by a second worker."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, lease_s: float,
                 renew: Callable[[Session], object] | None = None) -> None:
        """`renew(session)`: what to renew (default: the job's lease)."""
        self.sessions, self.job_id, self.lease_s = sessions, job_id, lease_s
        self._renew = renew or self._renew_job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{job_id}",
                                        daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                with self.sessions() as session:
                    self._renew(session)
                    session.commit()
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                log.warning("job %s: lease not renewed: %s", self.job_id, exc)

    def _renew_job(self, session: Session) -> None:
        session.execute(update(Job).where(Job.id == self.job_id, Job.state == JobState.RUNNING)
                        .values(lease_until=utcnow() + timedelta(seconds=self.lease_s)))
