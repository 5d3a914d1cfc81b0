"""Run one job: fetch its inputs, dub, store the result, record progress and the outcome.
Idempotent: a job that already succeeded is not run again; a rerun after a crash starts over
and writes a new result key (results are never overwritten in place)."""

from __future__ import annotations

import copy
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from lipdub.db.models import Job, JobState, Upload
from lipdub.errors import LipDubError
from lipdub.jobs.service import claim, hand_off, renew_lease, transition
from lipdub.storage import ObjectStore

log = logging.getLogger(__name__)

# Share of the progress bar each pipeline pass takes.
# The share of the progress bar each pass takes, by kind of job.
_SPANS = {
    "dub": {"fetch": (0, 5), "faces": (5, 35), "lip-sync": (35, 92), "encode": (92, 98),
            "upload": (98, 99)},
    # A dub that first trains a restorer on its own footage (restore: auto).
    "dub+train": {"fetch": (0, 5), "faces": (5, 20), "crops": (20, 25), "train": (25, 55),
                  "lip-sync": (55, 92), "encode": (92, 98), "upload": (98, 99)},
    "identity.train": {"fetch": (0, 5), "crops": (5, 20), "train": (20, 95)},
}


def progress_spans(job: Job) -> dict[str, tuple[int, int]]:
    if job.kind == "dub" and (job.options or {}).get("restore") == "auto":
        return _SPANS["dub+train"]
    return _SPANS.get(job.kind, _SPANS["dub"])


class JobCanceledError(Exception):
    pass


class DbProgress:
    """ProgressSink that writes stage and progress to the job row (at most once a second)
    and notices a cancel request there."""

    def __init__(self, session: Session, job: Job, lease_s: float,
                 min_interval_s: float = 1.0) -> None:
        self.session, self.job, self.lease_s = session, job, lease_s
        self.spans = progress_spans(job)
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._last = 0.0
        self._interval = min_interval_s

    def start(self, stage: str, total: int) -> None:
        self._totals[stage], self._done[stage] = max(total, 1), 0
        self.job.stage = stage
        self._write(force=True)

    def advance(self, stage: str, amount: int = 1) -> None:
        self._done[stage] = self._done.get(stage, 0) + amount
        self._write()

    def finish(self, stage: str) -> None:
        self._done[stage] = self._totals.get(stage, 1)
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        stage = self.job.stage or ""
        low, high = self.spans.get(stage, (0, 100))
        fraction = self._done.get(stage, 0) / self._totals.get(stage, 1)
        self.job.progress = int(low + (high - low) * min(1.0, fraction))
        renew_lease(self.session, self.job, self.lease_s)  # the heartbeat: still alive
        self.session.commit()
        self.session.refresh(self.job, ["cancel_requested"])
        if self.job.cancel_requested:
            raise JobCanceledError(self.job.id)


def fetch_input(uri: str, tenant_id: str, session: Session, store: ObjectStore,
                folder: Path, name: str,
                fetch_url: Callable[[str, Path], None] | None = None) -> Path:
    """An upload id ("upload:<id>" or the bare id), an s3:// URI or an https URL -> a file."""
    target = folder / name
    if uri.startswith(("https://", "http://")):
        if fetch_url is None:
            raise LipDubError(f"Fetching URLs is not enabled here: '{uri}'.",
                              "Upload the file first and pass its upload id.")
        fetch_url(uri, target)
        return target
    if uri.startswith("s3://"):
        from lipdub.storage import S3Store

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        # The same S3 service (endpoint, credentials) as the platform's own store: MinIO
        # deployments name their buckets there too.
        endpoint = store.client.meta.endpoint_url if isinstance(store, S3Store) else None
        S3Store(bucket, endpoint).get_file(key, target)
        return target
    upload = session.get(Upload, uri.removeprefix("upload:"))
    if upload is None or upload.tenant_id != tenant_id or upload.state != "ready":
        raise LipDubError(f"Upload '{uri}' does not exist.", "Upload the file first.")
    store.get_file(upload.storage_key, target)
    return target


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
    fetch_url: Callable[[str, Path], None] | None
    work: dict = field(default_factory=dict)

    def fetch(self, uri: str, name: str) -> Path:
        return fetch_input(uri, self.job.tenant_id, self.session, self.store, self.folder,
                           name + _suffix(uri), self.fetch_url)


@dataclass
class WorkResult:
    result_key: str | None
    timings: dict
    message: str = "result stored"


@dataclass(frozen=True)
class Stage:
    """One step of a kind of job. Its work returns the job's result when it is the last."""

    name: str
    work: Callable[[WorkContext], WorkResult | None]
    applies: Callable[[Job], bool] = lambda _job: True  # some stages run only for some jobs


@dataclass(frozen=True)
class StageOutcome:
    state: JobState | None  # None: another worker holds the job
    next_stage: str | None  # what to run next; None once the job is finished


def run_stage(job_id: str, sessions: sessionmaker[Session], store: ObjectStore,
              plans: dict[str, list[Stage]],
              fetch_url: Callable[[str, Path], None] | None = None,
              notify: Callable[[Session, Job], object] | None = None,
              lease_s: float = 120.0,
              on_finish: Callable[[Job], None] | None = None,
              on_stage_done: Callable[[Session, Job, str], object] | None = None,
              ) -> StageOutcome:
    """Claim the job and run its next stage not yet done. A stage that fails or is canceled
    ends the job (and notifies); one that succeeds hands the job off to the next stage, or,
    as the last, stores the result."""
    with sessions() as session:
        job = claim(session, job_id, lease_s)
        if job is None:
            existing = session.get(Job, job_id)
            state = existing.state if existing is not None and existing.state.terminal else None
            return StageOutcome(state, None)
        progress = DbProgress(session, job, lease_s)
        ctx: WorkContext | None = None
        try:
            if job.kind not in plans:
                raise LipDubError(f"This worker cannot run '{job.kind}' jobs.",
                                  "Upgrade the workers.")
            if job.cancel_requested:
                raise JobCanceledError(job.id)
            work = copy.deepcopy(job.work or {})
            done = list(work.get("done", []))
            plan = [stage for stage in plans[job.kind]
                    if stage.name not in done and stage.applies(job)]
            stage = plan[0]
            job.stage = stage.name
            with tempfile.TemporaryDirectory(prefix="lipdub-job-") as tmp:
                ctx = WorkContext(session, job, store, Path(tmp), progress, fetch_url, work)
                result = stage.work(ctx)
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
        except JobCanceledError:
            transition(session, job, JobState.CANCELED, "canceled while running")
        except LipDubError as error:
            job.error_code, job.error_message = error.code, str(error)
            transition(session, job, JobState.FAILED, str(error))
        except Exception as error:  # noqa: BLE001 - a bug or a broken input: fail cleanly
            log.exception("job %s failed", job.id)
            job.error_code, job.error_message = "internal_error", repr(error)
            transition(session, job, JobState.FAILED, "internal error")
        if ctx is not None and job.state is not JobState.SUCCEEDED:
            # What the failed stage stored is the job's too, so it is cleaned up with it.
            job.work = {**(job.work or {}), "owned": ctx.work.get("owned", [])}
            session.commit()
        if on_finish is not None:
            on_finish(job)
        if notify is not None and job.webhook_url:
            notify(session, job)
        return StageOutcome(job.state, None)
