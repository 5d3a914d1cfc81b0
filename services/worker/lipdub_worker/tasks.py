"""Celery tasks. Run with:  celery -A lipdub_worker.tasks worker --concurrency 1

acks_late + reject_on_worker_lost: a job whose worker dies is redelivered, and the runner
restarts it cleanly (results are written under a new key, never overwritten)."""

from __future__ import annotations

from functools import cache

import httpx
from celery import Celery
from sqlalchemy.exc import OperationalError

from lipdub.config import get_settings
from lipdub.db.session import session_factory, upgrade
from lipdub.jobs.dubbing import dub_file
from lipdub.jobs.notify import deliver, due_deliveries, webhook_secret
from lipdub.jobs.runner import run_job
from lipdub.jobs.service import stale_jobs
from lipdub.storage import store_from_settings

RUN_JOB = "lipdub.run_job"
REDELIVER = "lipdub.redeliver_webhooks"
SWEEP = "lipdub.requeue_stale_jobs"

settings = get_settings()
app = Celery("lipdub", broker=settings.broker_url)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # a dub is long: take one at a time
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s},
    beat_schedule={
        "webhook-retries": {"task": REDELIVER, "schedule": 60.0},
        "requeue-stale-jobs": {"task": SWEEP, "schedule": settings.sweep_interval_s},
    },
)


@cache
def _context() -> tuple:
    upgrade(settings.database_url)
    secret = webhook_secret(settings.webhook_secret, settings.storage_dir.parent)
    return session_factory(settings.database_url), store_from_settings(settings), secret, \
        httpx.Client()


@app.task(name=RUN_JOB, autoretry_for=(OperationalError, httpx.TransportError),
          retry_backoff=True, retry_backoff_max=600, max_retries=8)
def run_job_task(job_id: str) -> str:
    """Transient faults (database or network unreachable) retry with backoff; bad input
    fails the job cleanly inside the runner and is not retried. A job another worker holds
    is left to it (the sweep picks it up again should that worker die)."""
    sessions, store, secret, http = _context()
    state = run_job(job_id, sessions, store, dub_file,
                    notify=lambda session, job: deliver(session, job, secret, http),
                    lease_s=settings.job_lease_s)
    return state.value if state is not None else "held elsewhere"


@app.task(name=SWEEP)
def requeue_stale_jobs() -> int:
    """Jobs are never lost with their queue message: the database is the record, and jobs
    that should be moving but are not get enqueued again (claiming makes that safe)."""
    sessions, *_ = _context()
    with sessions() as session:
        stale = stale_jobs(session, settings.requeue_after_s)
    for job_id in stale:
        run_job_task.delay(job_id)
    return len(stale)


@app.task(name=REDELIVER)
def redeliver_webhooks() -> int:
    sessions, _, secret, http = _context()
    with sessions() as session:
        jobs = due_deliveries(session)
        for job in jobs:
            deliver(session, job, secret, http)
    return len(jobs)
