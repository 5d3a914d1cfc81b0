"""Celery tasks. Run with:  celery -A lipdub_worker.tasks worker --concurrency 1

A job runs as a chain of stage tasks (lipdub.stage.probe -> faces -> lip-sync -> encode ->
publish; an identity's training is one stage), each taking the job from the database and
enqueuing the next; the finished job's webhook is the last task (lipdub.notify). acks_late +
reject_on_worker_lost: a stage whose worker dies is redelivered and runs again (a stage done
is never redone; results are written under new keys)."""

from __future__ import annotations

import logging
import threading
from functools import cache

import httpx
from celery import Celery, Task
from celery.signals import worker_init, worker_process_init, worker_shutting_down
from prometheus_client import start_http_server
from sqlalchemy.exc import OperationalError

from lipdub.config import get_settings
from lipdub.db.models import Job, JobState
from lipdub.db.session import upgrade
from lipdub.jobs.context import JobContext
from lipdub.jobs.dubbing import dub_stages
from lipdub.jobs.faults import TransientFault
from lipdub.jobs.identities import identity_training_stages
from lipdub.jobs.notify import delivered
from lipdub.memory import limit_malloc_arenas

log = logging.getLogger(__name__)

RUN_JOB = "lipdub.run_job"
NOTIFY = "lipdub.notify"
STAGE_PREFIX = "lipdub.stage."
PART_PREFIX = "lipdub.part."  # a part of a parted stage (a film's segment), routed as it
MAINTAIN = "lipdub.maintain"

settings = get_settings()
# Every stage of every kind of job (a task each, so each can be routed to its own queue).
STAGES = [stage.name for stage in dub_stages(settings, lambda _video, _audio: None)
          + identity_training_stages(0, 0, "cpu")]
limit_malloc_arenas()  # before the pool's threads: renders segment after segment
app = Celery("lipdub", broker=settings.broker_url)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,  # a dub is long: take one at a time
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # Health checks and keep-alive: a connection left half-open by a broker restart is
    # noticed and replaced instead of leaving the worker waiting on it.
    broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_s,
                              "health_check_interval": 10, "socket_keepalive": True,
                              "socket_connect_timeout": 5},
    # e.g. LIPDUB_STAGE_QUEUES='{"lip-sync": "gpu", "train": "gpu"}': GPU workers take those.
    task_routes={f"{prefix}{stage}": {"queue": queue}
                 for stage, queue in settings.stage_queues.items()
                 for prefix in (STAGE_PREFIX, PART_PREFIX)},
    beat_schedule={"maintenance": {"task": MAINTAIN, "schedule": settings.sweep_interval_s}},
)


@cache
def _context() -> JobContext:
    upgrade(settings.database_url)
    context = JobContext.from_settings(settings)
    context.remove_leftovers()  # what killed workers on this machine left behind
    return context


# Set once this worker is asked to stop (SIGTERM: Celery's warm shutdown): the stage in hand
# stops at its next progress write and the job is handed back for another worker.
_stopping = threading.Event()


@worker_shutting_down.connect
def _on_shutdown(**_kwargs: object) -> None:
    _stopping.set()


@worker_process_init.connect
def _metrics_in_pool_process(**_kwargs: object) -> None:
    _serve_metrics()


@worker_init.connect
def _metrics_in_solo_worker(sender: object = None, **_kwargs: object) -> None:
    if "solo" in str(getattr(sender, "pool_cls", "")).lower():  # tasks run in this process
        _serve_metrics()


@cache
def _serve_metrics() -> None:
    """The job and inference metrics, served by the process where tasks run. One worker
    process per container (--concurrency 1, as deployed): with more, the first pool process
    serves its own and the others say why they cannot."""
    if settings.worker_metrics_port:
        try:
            start_http_server(settings.worker_metrics_port)
        except OSError as exc:
            log.warning("metrics not served by this pool process: port %s: %s (run one "
                        "worker process per container to see every process's metrics)",
                        settings.worker_metrics_port, exc)


def _send_notify(_session: object, job: Job) -> None:
    app.send_task(NOTIFY, args=[job.id])


def _retry_or_give_up(task: Task, job_id: str, fault: TransientFault) -> str:
    """A passing fault: this task again with backoff; after the last try the job fails with
    the fault's code."""
    attempt, policy = task.request.retries + 1, _context().retry
    if policy.exhausted(attempt):
        _context().give_up(job_id, fault, notify=_send_notify)
        return f"failed: {fault.code}"
    raise task.retry(countdown=policy.delay_s(attempt), max_retries=policy.attempts,
                     exc=fault) from fault


def _advance(task: Task, job_id: str) -> str:
    """Run the job's next stage; enqueue the stage after it (as its own task, so another
    worker, or another queue, may take it). A passing fault retries this task with backoff;
    after the last try the job fails with the fault's code."""
    try:
        outcome = _context().run_stage(job_id, notify=_send_notify,
                                       should_stop=_stopping.is_set)
    except TransientFault as fault:
        return _retry_or_give_up(task, job_id, fault)
    if outcome.parts is not None:  # a parted stage: its parts to any number of workers
        for index in outcome.parts:
            app.send_task(f"{PART_PREFIX}{outcome.next_stage}",
                          args=[job_id, outcome.next_stage, index])
        return f"parts: {len(outcome.parts)}"
    if outcome.state is JobState.RUNNING and outcome.next_stage is None:
        # Handed back (this worker is stopping): the same stage again, on another worker.
        app.send_task(RUN_JOB, args=[job_id])
        return "handed back"
    if outcome.next_stage is not None:
        app.send_task(f"{STAGE_PREFIX}{outcome.next_stage}", args=[job_id])
        return f"next: {outcome.next_stage}"
    if outcome.state is not None and outcome.state.terminal:
        for waiting in _context().dispatch():  # a batch item may take the freed slot
            app.send_task(RUN_JOB, args=[waiting])
    return outcome.state.value if outcome.state is not None else "held elsewhere"


# Transient faults (database or network unreachable) retry with backoff; bad input fails the
# job cleanly inside the runner and is not retried. A job another worker holds is left to it
# (the sweep picks it up again should that worker die).
_RETRY = {"autoretry_for": (OperationalError, httpx.TransportError), "retry_backoff": True,
          "retry_backoff_max": 600, "max_retries": 8}


@app.task(name=RUN_JOB, bind=True, **_RETRY)
def run_job_task(self: Task, job_id: str) -> str:
    """Start (or resume) a job: runs whichever stage is next."""
    return _advance(self, job_id)


def _stage_task(stage: str) -> None:
    @app.task(name=f"{STAGE_PREFIX}{stage}", bind=True, **_RETRY)
    def task(self: Task, job_id: str) -> str:
        return _advance(self, job_id)


def _part_task(stage: str) -> None:
    @app.task(name=f"{PART_PREFIX}{stage}", bind=True, **_RETRY)
    def task(self: Task, job_id: str, stage_name: str, index: int) -> str:
        """One part; the worker that finishes the last sends the stage on to join them."""
        try:
            outcome = _context().run_part(job_id, stage_name, index, notify=_send_notify,
                                          should_stop=_stopping.is_set)
        except TransientFault as fault:
            return _retry_or_give_up(self, job_id, fault)
        if outcome.last:
            app.send_task(f"{STAGE_PREFIX}{stage_name}", args=[job_id])
        return "done" if outcome.done else "not run"


for _stage in STAGES:
    _stage_task(_stage)
    _part_task(_stage)


@app.task(name=NOTIFY, **_RETRY)
def notify_task(job_id: str) -> str:
    """The webhook for a finished job, as its own task: a slow receiver never holds a stage
    worker. Idempotent: a message already delivered is not sent again."""
    context = _context()
    with context.sessions() as session:
        job = session.get(Job, job_id)
        if job is None or not job.webhook_url or not job.state.terminal:
            return "nothing to send"
        if delivered(session, job):
            return "already delivered"
        return f"attempt: {context.notify(session, job).status_code}"


@app.task(name=MAINTAIN)
def maintain() -> int:
    """The periodic chores (webhook retries, clean-ups, the recovery sweep): jobs are never
    lost with their queue message, since the database is the record, and jobs that should
    be moving but are not get enqueued again (claiming makes that safe)."""
    stale = _context().maintain()
    for job_id in stale:
        run_job_task.delay(job_id)
    return len(stale)
