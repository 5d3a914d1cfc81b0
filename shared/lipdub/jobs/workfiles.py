"""A job's working files: artifacts its stages pass on through the object store (under the
job's work prefix, owned by the job and removed when it ends), and this machine's copies of
them (shared by the job's stages when they run on the same worker: a film is downloaded
once, not once per stage). Generic to every kind of job."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from lipdub.db.models import Job, JobState
from lipdub.storage import ObjectStore, StoreUnavailableError, tenant_key


def local_copies(job_id: str) -> Path:
    """This machine's folder of a job's stored files."""
    return Path(tempfile.gettempdir()) / "lipdub-jobs" / job_id


def local_copy(store: ObjectStore, job: Job, key: str) -> Path:
    """A stored file of the job on this machine (fetched once, atomically)."""
    folder = local_copies(job.id)
    path = folder / key.replace("/", "_")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        store.get_file(key, partial)
        partial.replace(path)
    return path


def work_key(job: Job, name: str) -> str:
    """Where the job keeps a working artifact: the same key whenever its stage runs again,
    so a stage run twice overwrites, never orphans."""
    return tenant_key(job.tenant_id, "work", job.id, name)


def store_owned(store: ObjectStore, job: Job, work: dict, path: Path, name: str) -> str:
    """Store a working artifact the job owns (removed when the job ends); its key."""
    key = work_key(job, name)
    store.put_file(key, path)
    owned = work.setdefault("owned", [])
    if key not in owned:
        owned.append(key)
    return key


def prune_local_copies(sessions) -> int:  # noqa: ANN001 - sessionmaker
    """Remove this machine's copies of inputs of jobs that have finished: a worker that ran
    only a job's first stages is not the one whose publish stage cleans up."""
    root = local_copies("-").parent
    folders = {p.name: p for p in root.iterdir() if p.is_dir()} if root.exists() else {}
    if not folders:
        return 0
    with sessions() as session:
        finished = list(session.scalars(select(Job.id).where(
            Job.id.in_(folders), Job.state.in_([s for s in JobState if s.terminal]))))
    for job_id in finished:
        shutil.rmtree(folders[job_id], ignore_errors=True)
    return len(finished)


def discard_work(store, job) -> None:  # noqa: ANN001 - ObjectStore, Job
    """A job that ended without publishing: remove its working artifacts and local copies
    (its inputs' uploads and any stored result stay). What the store will not delete now
    (full, down) stays listed, and the job is marked for the maintenance sweep."""
    left = []
    for key in (job.work or {}).get("owned", []):
        try:
            store.delete(key)
        except StoreUnavailableError:
            left.append(key)
    if left or job.cleanup_pending:
        job.work = {**(job.work or {}), "owned": left}
        job.cleanup_pending = bool(left)
    shutil.rmtree(local_copies(job.id), ignore_errors=True)


def collect_garbage(sessions, store) -> int:  # noqa: ANN001 - sessionmaker, ObjectStore
    """Retry the clean-up of finished jobs whose store refused it; returns how many jobs are
    clean now."""
    with sessions() as session:
        jobs = list(session.scalars(select(Job).where(Job.cleanup_pending.is_(True))
                                    .limit(100)))
        for job in jobs:
            discard_work(store, job)
        session.commit()
        return sum(not job.cleanup_pending for job in jobs)
