"""What the gateway holds for its lifetime: settings, the job context (database, store,
webhooks), the executor or broker that jobs go to, the API-key cache and the metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Counter, Histogram

from lipdub.config import Settings
from lipdub.jobs.context import JobContext
from lipdub.jobs.executor import InProcessExecutor
from lipdub.jobs.keys import TenantRef
from lipdub.jobs.notify import kept_secret
from lipdub_gateway.console.session import ConsoleSessions
from lipdub_gateway.queue_depth import QueueDepth

log = logging.getLogger(__name__)

RUN_JOB = "lipdub.run_job"  # the worker's entry task


@dataclass
class Gateway:
    settings: Settings
    context: JobContext
    executor: InProcessExecutor | None
    queue: object | None  # a Celery app used only to send (the task code is the worker's)
    # Verified keys only (bounded: unknown keys cannot fill it). Touched only on the event
    # loop's thread, so it needs no lock.
    known_keys: TTLCache[str, TenantRef]
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.console = ConsoleSessions(kept_secret(
            self.settings.console_secret, self.settings.storage_dir.parent / "console_secret"))
        self.submitted = Counter("lipdub_jobs_submitted_total", "Jobs accepted",
                                 registry=self.registry)
        self.enqueue_failures = Counter(
            "lipdub_enqueue_failures_total", "Accepted jobs the broker did not take at once "
            "(the recovery sweep enqueues them later)", registry=self.registry)
        self.latency = Histogram("lipdub_http_request_seconds", "Request latency", ["route"],
                                 registry=self.registry)
        if self.settings.executor == "celery":
            self.registry.register(QueueDepth(self.settings.broker_url,
                                              set(self.settings.stage_queues.values())))

    @classmethod
    def build(cls, settings: Settings, run_jobs: bool) -> Gateway:
        context = JobContext.from_settings(settings)
        queue = None
        if settings.executor == "celery":
            from celery import Celery

            queue = Celery("lipdub", broker=settings.broker_url)
            queue.conf.broker_transport_options = {"socket_connect_timeout": 2,
                                                   "socket_timeout": 5}
        executor = (InProcessExecutor(context.sessions, context.run, context.maintain,
                                      context.give_up, settings.sweep_interval_s,
                                      context.retry, dispatch=context.dispatch)
                    if run_jobs and settings.executor == "inprocess" else None)
        return cls(settings, context, executor, queue,
                   TTLCache(maxsize=10_000, ttl=settings.auth_cache_s))

    def enqueue(self, job_id: str) -> None:
        self.submitted.inc()
        self._send(job_id)

    def dispatch(self) -> None:
        """Batch items the tenants' fair share lets run now, to the workers."""
        for job_id in self.context.dispatch():
            self._send(job_id)

    def _send(self, job_id: str) -> None:
        if self.executor is not None:
            self.executor.submit(job_id)
        elif self.queue is not None:
            try:
                self.queue.send_task(RUN_JOB, args=[job_id], retry=False)
            except Exception as exc:  # noqa: BLE001 - the database is the job's record
                # Accepted all the same: the recovery sweep enqueues queued jobs whose
                # message was lost, once the broker is back.
                log.warning("job %s accepted but not enqueued (%s); the sweep will", job_id,
                            exc)
                self.enqueue_failures.inc()

    def broker_reachable(self) -> None:
        if self.queue is not None:
            with self.queue.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
