"""Run one job: fetch its inputs, dub, store the result, record progress and the outcome.
Idempotent: a job that already succeeded is not run again; a rerun after a crash starts over
and writes a new result key (results are never overwritten in place)."""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from lipdub.db.models import Job, JobState, Upload
from lipdub.errors import LipDubError
from lipdub.jobs.service import claim, renew_lease, transition
from lipdub.storage import ObjectStore

log = logging.getLogger(__name__)

# Share of the progress bar each pipeline pass takes.
_PASS_SPAN = {"fetch": (0, 5), "faces": (5, 35), "lip-sync": (35, 95),
              "crops": (5, 20), "train": (20, 95)}


class JobCanceledError(Exception):
    pass


class DbProgress:
    """ProgressSink that writes stage and progress to the job row (at most once a second)
    and notices a cancel request there."""

    def __init__(self, session: Session, job: Job, lease_s: float,
                 min_interval_s: float = 1.0) -> None:
        self.session, self.job, self.lease_s = session, job, lease_s
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
        low, high = _PASS_SPAN.get(stage, (0, 100))
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
        S3Store(bucket).get_file(key, target)
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
    """What a kind of job's work gets: its job, a scratch folder that is removed after, the
    progress sink, and a way to fetch any input URI into that folder."""

    session: Session
    job: Job
    store: ObjectStore
    folder: Path
    progress: DbProgress
    fetch_url: Callable[[str, Path], None] | None

    def fetch(self, uri: str, name: str) -> Path:
        return fetch_input(uri, self.job.tenant_id, self.session, self.store, self.folder,
                           name + _suffix(uri), self.fetch_url)


@dataclass
class WorkResult:
    result_key: str | None
    timings: dict
    message: str = "result stored"


Work = Callable[[WorkContext], WorkResult]


def run_job(job_id: str, sessions: sessionmaker[Session], store: ObjectStore,
            work: dict[str, Work],
            fetch_url: Callable[[str, Path], None] | None = None,
            notify: Callable[[Session, Job], object] | None = None,
            lease_s: float = 120.0) -> JobState | None:
    """Executes the job with the work for its kind and returns its final state. Returns None
    when the job could not be claimed (another worker holds it)."""
    with sessions() as session:
        job = claim(session, job_id, lease_s)
        if job is None:
            existing = session.get(Job, job_id)
            return existing.state if existing is not None and existing.state.terminal else None
        progress = DbProgress(session, job, lease_s)
        try:
            if job.kind not in work:
                raise LipDubError(f"This worker cannot run '{job.kind}' jobs.",
                                  "Upgrade the workers.")
            with tempfile.TemporaryDirectory(prefix="lipdub-job-") as tmp:
                done = work[job.kind](WorkContext(session, job, store, Path(tmp), progress,
                                                  fetch_url))
            job.result_key, job.timings = done.result_key, done.timings
            transition(session, job, JobState.SUCCEEDED, done.message, stage="done")
        except JobCanceledError:
            transition(session, job, JobState.CANCELED, "canceled while running")
        except LipDubError as error:
            job.error_code, job.error_message = error.code, str(error)
            transition(session, job, JobState.FAILED, str(error))
        except Exception as error:  # noqa: BLE001 - a bug or a broken input: fail cleanly
            log.exception("job %s failed", job.id)
            job.error_code, job.error_message = "internal_error", repr(error)
            transition(session, job, JobState.FAILED, "internal error")
        if notify is not None and job.webhook_url:
            notify(session, job)
        return job.state
