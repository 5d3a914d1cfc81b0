"""In-process execution (embedded mode): queued jobs run on a background thread, one at a
time, with no broker. The Celery worker is the production alternative."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from lipdub.db.models import Job, JobState

log = logging.getLogger(__name__)


class InProcessExecutor:
    def __init__(self, sessions: sessionmaker[Session],
                 run: Callable[[str], object]) -> None:
        self._sessions = sessions
        self._run = run
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="lipdub-jobs", daemon=True)

    def start(self) -> None:
        # Jobs left queued or running by a previous process are picked up again; in embedded
        # mode this process is the only worker, so leases held by a dead one are void.
        with self._sessions() as session:
            session.execute(update(Job).where(Job.state == JobState.RUNNING)
                            .values(lease_until=datetime(1970, 1, 1, tzinfo=UTC)))
            session.commit()
            pending = session.scalars(select(Job.id).where(
                Job.state.in_([JobState.QUEUED, JobState.RUNNING])).order_by(Job.created_at))
            for job_id in pending:
                self._queue.put(job_id)
        self._thread.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(job_id)
            except Exception:  # noqa: BLE001 - one job's failure must not stop the others
                log.exception("job %s crashed", job_id)
