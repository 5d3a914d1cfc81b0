"""Celery tasks. Run with:  celery -A lipdub_worker.tasks worker --concurrency 1

acks_late + reject_on_worker_lost: a job whose worker dies is redelivered, and the runner
restarts it cleanly (results are written under a new key, never overwritten)."""

from __future__ import annotations

from functools import cache

import httpx
from celery import Celery
from sqlalchemy.exc import OperationalError

from lipdub.config import get_settings
from lipdub.db.session import upgrade
from lipdub.jobs.context import JobContext
from lipdub.jobs.notify import due_deliveries
from lipdub.jobs.service import stale_jobs

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
def _context() -> JobContext:
    upgrade(settings.database_url)
    return JobContext.from_settings(settings)


@app.task(name=RUN_JOB, autoretry_for=(OperationalError, httpx.TransportError),
          retry_backoff=True, retry_backoff_max=600, max_retries=8)
def run_job_task(job_id: str) -> str:
    """Transient faults (database or network unreachable) retry with backoff; bad input
    fails the job cleanly inside the runner and is not retried. A job another worker holds
    is left to it (the sweep picks it up again should that worker die)."""
    state = _context().run(job_id)
    return state.value if state is not None else "held elsewhere"


@app.task(name=SWEEP)
def requeue_stale_jobs() -> int:
    """Jobs are never lost with their queue message: the database is the record, and jobs
    that should be moving but are not get enqueued again (claiming makes that safe)."""
    with _context().sessions() as session:
        stale = stale_jobs(session, settings.requeue_after_s)
    for job_id in stale:
        run_job_task.delay(job_id)
    return len(stale)


@app.task(name=REDELIVER)
def redeliver_webhooks() -> int:
    context = _context()
    with context.sessions() as session:
        jobs = due_deliveries(session)
        for job in jobs:
            context.notify(session, job)
    return len(jobs)
