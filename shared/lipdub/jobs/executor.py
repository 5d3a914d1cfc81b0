"""In-process execution (embedded mode): queued jobs run on a background thread, one at a
time, with no broker; a second thread does what Celery beat does in production (webhook
retries, clean-ups, the recovery sweep). A stage that meets a passing fault (database or
store unavailable) is retried with backoff, and the job fails with the fault's code only
after the last try. The Celery worker is the production alternative."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from lipdub.db.models import Job, JobPart, JobState, PartState
from lipdub.jobs.faults import RetryPolicy, TransientFault

log = logging.getLogger(__name__)


class InProcessExecutor:
    def __init__(self, sessions: sessionmaker[Session],
                 run: Callable[[str, Callable[[], bool]], object],
                 maintain: Callable[[], list[str]] | None = None,
                 give_up: Callable[[str, TransientFault], object] | None = None,
                 maintenance_interval_s: float = 10.0,
                 retry: RetryPolicy | None = None,
                 dispatch: Callable[[], list[str]] | None = None) -> None:
        """`dispatch()`: jobs that may start now that one has ended (batch items waiting
        for their tenant's fair share)."""
        self._sessions = sessions
        self._dispatch = dispatch
        self._run, self._maintain, self._give_up = run, maintain, give_up
        self._interval = maintenance_interval_s
        self._retry = retry or RetryPolicy()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._pending: set[str] = set()  # queued here and not started: not queued twice
        self._faults: dict[str, int] = {}  # passing faults in a row, per job
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name="lipdub-jobs", daemon=True),
                         threading.Thread(target=self._maintenance, name="lipdub-maintenance",
                                          daemon=True)]

    def start(self) -> None:
        # Jobs left queued or running by a previous process are picked up again; in embedded
        # mode this process is the only worker, so leases held by a dead one are void.
        with self._sessions() as session:
            void = datetime(1970, 1, 1, tzinfo=UTC)
            session.execute(update(Job).where(Job.state == JobState.RUNNING)
                            .values(lease_until=void))
            session.execute(update(JobPart).where(JobPart.state == PartState.RUNNING)
                            .values(lease_until=void))
            session.commit()
            # (batch items not yet dispatched wait for their turn: dispatch hands them out)
            pending = list(session.scalars(select(Job.id).where(
                Job.state.in_([JobState.QUEUED, JobState.RUNNING]), Job.dispatched.is_(True))
                .order_by(Job.created_at)))
        for job_id in pending:
            self.submit(job_id)
        self._dispatch_more()
        for thread in self._threads:
            thread.start()

    def submit(self, job_id: str) -> None:
        with self._lock:
            if job_id in self._pending:
                return
            self._pending.add(job_id)
        self._queue.put(job_id)

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop taking jobs; the one running stops at its next progress write (about a
        second) and is handed back, to resume at that stage on the next start. True if it
        stopped within `timeout_s`."""
        self._stopping.set()
        self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=timeout_s)
        return not any(thread.is_alive() for thread in self._threads)

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            with self._lock:
                self._pending.discard(job_id)
            try:
                self._run(job_id, self._stopping.is_set)
                self._faults.pop(job_id, None)
            except TransientFault as fault:
                self._retry_later(job_id, fault)
            except Exception:  # noqa: BLE001 - one job's failure must not stop the others
                log.exception("job %s crashed", job_id)
            self._dispatch_more()

    def _dispatch_more(self) -> None:
        if self._dispatch is None:
            return
        try:
            for job_id in self._dispatch():
                self.submit(job_id)
        except Exception:  # noqa: BLE001 - the maintenance round dispatches them later
            log.exception("dispatch failed")

    def _retry_later(self, job_id: str, fault: TransientFault) -> None:
        attempt = self._faults[job_id] = self._faults.get(job_id, 0) + 1
        if self._retry.exhausted(attempt):
            self._faults.pop(job_id, None)
            if self._give_up is not None:
                self._give_up(job_id, fault)  # if even that fails, the sweep takes it later
            return
        delay = self._retry.delay_s(attempt)
        log.warning("job %s: %s; retry %d in %.0f s", job_id, fault.code, attempt, delay)
        timer = threading.Timer(delay, self.submit, [job_id])
        timer.daemon = True
        timer.start()

    def _maintenance(self) -> None:
        while not self._stopping.wait(self._interval):
            if self._maintain is None:
                continue
            try:
                for job_id in self._maintain():
                    self.submit(job_id)
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("maintenance failed")
