"""Everything a job needs to run, built once from the settings: shared by the gateway's
in-process executor and the Celery worker so that both run jobs exactly alike."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from lipdub.config import Settings
from lipdub.db.models import Batch, Job, JobState
from lipdub.db.session import session_factory
from lipdub.jobs.batches import batch_jobs, complete_if_done, counts, dispatch
from lipdub.jobs.dubbing import dub_stages
from lipdub.jobs.faults import RetryPolicy, TransientFault
from lipdub.jobs.fetch import UrlFetcher
from lipdub.jobs.identities import TRAIN_KIND, identity_training_stages
from lipdub.jobs.inputs import InputAccess
from lipdub.jobs.limits import check_media_limits
from lipdub.jobs.notify import (
    BATCH_COMPLETED,
    batch_message,
    deliver,
    due_deliveries,
    progress_message_for,
    review_message_for,
    webhook_secret,
)
from lipdub.jobs.part_runner import PartOutcome, run_part
from lipdub.jobs.runner import Stage, StageOutcome, finish_job, run_stage
from lipdub.jobs.service import stale_jobs, transition
from lipdub.jobs.workfiles import collect_garbage, discard_work, prune_local_copies
from lipdub.netguard import NetPolicy
from lipdub.scratch import remove_dead_scratch
from lipdub.storage import LocalStore, ObjectStore, store_from_settings

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore
    webhook_secret: str
    net: NetPolicy
    inputs: InputAccess
    retry: RetryPolicy
    http: httpx.Client  # SSRF-guarded: webhooks
    fetch_url: UrlFetcher  # SSRF-guarded: URL inputs

    @classmethod
    def from_settings(cls, settings: Settings) -> JobContext:
        net = NetPolicy.of(settings.allow_http_urls, settings.url_allow_hosts,
                           settings.url_allow_networks)
        return cls(
            settings=settings,
            sessions=session_factory(settings.database_url),
            store=store_from_settings(settings),
            webhook_secret=webhook_secret(settings.webhook_secret, settings.storage_dir.parent),
            net=net,
            inputs=InputAccess(settings.s3_bucket, settings.s3_input_grants,
                               settings.s3_timeout_s),
            retry=RetryPolicy(settings.fault_retry_attempts, settings.fault_retry_first_s),
            http=net.client(httpx.Timeout(30.0, connect=10.0)),
            fetch_url=UrlFetcher(net, settings.max_upload_bytes),
        )

    def check_target(self, url: str) -> None:
        """The early SSRF check with this platform's settings (inputs and webhooks alike);
        the guarded clients check again at connect time."""
        self.net.check_url(url)

    def notify(self, session: Session, job: Job) -> object:
        return deliver(session, job, self.webhook_secret, self.http,
                       check_target=self.check_target)

    def notify_progress(self, session: Session, job: Job, stage_done: str) -> None:
        """A stage finished: tell receivers that asked for progress (best effort)."""
        if job.webhook_url and (job.options or {}).get("webhook_progress"):
            deliver(session, job, self.webhook_secret, self.http,
                    check_target=self.check_target,
                    message=progress_message_for(job, stage_done))

    def notify_review(self, session: Session, job: Job, review: dict, serial: int) -> None:
        """The review state changed: tell the job's receiver (best effort, like progress:
        a later change supersedes it)."""
        if job.webhook_url:
            deliver(session, job, self.webhook_secret, self.http,
                    check_target=self.check_target,
                    message=review_message_for(job, review, serial))

    def check_inputs(self, video: Path, _audio: Path) -> None:
        check_media_limits(video, self.settings.max_input_seconds,
                           self.settings.max_input_width, self.settings.max_input_height)

    def plans(self) -> dict[str, list[Stage]]:
        s = self.settings
        return {"dub": dub_stages(s, self.check_inputs),
                TRAIN_KIND: identity_training_stages(s.restore_steps, s.restore_batch_size,
                                                     s.device)}

    def run_stage(self, job_id: str,
                  notify: Callable[[Session, Job], object] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> StageOutcome:
        """The job's next stage (a worker's task). `notify` replaces sending the webhook
        here and now (a worker hands it to its own task instead)."""
        prune_local_copies(self.sessions)
        return run_stage(job_id, self.sessions, self.store, self.plans(),
                         inputs=self.inputs, fetch_url=self.fetch_url,
                         notify=notify or self.notify, lease_s=self.settings.job_lease_s,
                         on_finish=self._on_finish, on_stage_done=self.notify_progress,
                         should_stop=should_stop)

    def run_part(self, job_id: str, stage: str, index: int,
                 notify: Callable[[Session, Job], object] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> PartOutcome:
        """One part of a parted stage (a film's segment), here and now."""
        return run_part(job_id, stage, index, self.sessions, self.store, self.plans(),
                        self.inputs, self.fetch_url, self.settings.job_lease_s,
                        self._on_finish, notify or self.notify, should_stop)

    def dispatch(self) -> list[str]:
        """Batch items that may go to the workers now (each tenant's fair share)."""
        with self.sessions() as session:
            return dispatch(session, self.settings.batch_slots_per_tenant)

    def _batch_item_ended(self, job: Job) -> None:
        """The last item of a batch ended: the batch is completed, and says so once."""
        with self.sessions() as session:
            batch = complete_if_done(session, job.batch_id)
            if batch is None or not batch.webhook_url:
                return
            self._send_batch_completed(session, session.get(Job, job.id))

    def _send_batch_completed(self, session: Session, item: Job) -> None:
        """batch.completed for the batch of `item` (its last item), retried like a job's
        terminal message."""
        batch = session.get(Batch, item.batch_id)
        deliver(session, item, self.webhook_secret, self.http,
                check_target=self.check_target, retry=True,
                message=batch_message(batch, counts(batch_jobs(session, batch))))

    def _on_finish(self, job: Job) -> None:
        if job.batch_id is not None:
            try:
                self._batch_item_ended(job)
            except Exception as exc:  # noqa: BLE001 - the item's own ending comes first
                log.warning("batch %s: completion not recorded: %s", job.batch_id, exc)
        if job.state is not JobState.SUCCEEDED:
            discard_work(self.store, job)

    def ended_here(self, session: Session, job: Job) -> None:
        """A job ended outside a worker (canceled while no worker held it): clean up and
        tell its receiver, as a worker would."""
        finish_job(session, job, self._on_finish, self.notify)

    def give_up(self, job_id: str, fault: TransientFault,
                notify: Callable[[Session, Job], object] | None = None) -> bool:
        """A stage met the same passing fault too many times: fail the job with the fault's
        code. False when even that cannot be recorded (the database is the fault): the
        job stays claimable, and the recovery sweep retries it once the database is back."""
        try:
            with self.sessions() as session:
                job = session.get(Job, job_id)
                if job is None or job.state.terminal:
                    return True
                message = fault.message(self.retry.attempts)
                job.error_code, job.error_message = fault.code, message
                transition(session, job, JobState.FAILED, message)
                finish_job(session, job, self._on_finish, notify or self.notify)
                return True
        except Exception as exc:  # noqa: BLE001 - reported; the sweep is the fallback
            log.warning("job %s: could not record its failure (%s)", job_id, exc)
            return False

    def requeue_stale(self) -> list[str]:
        """Jobs that should be moving but are not (a lost queue message, a dead worker)."""
        with self.sessions() as session:
            return stale_jobs(session, self.settings.requeue_after_s)

    def redeliver_due(self) -> int:
        """Webhook messages whose retry is due: one more attempt each."""
        with self.sessions() as session:
            due = due_deliveries(session)
            for job, event_type in due:
                if event_type == BATCH_COMPLETED:
                    self._send_batch_completed(session, job)
                else:
                    self.notify(session, job)
        return len(due)

    def remove_leftovers(self) -> None:
        """What killed processes on this machine left: scratch folders, half-written
        objects of a local-folder store."""
        remove_dead_scratch()
        if isinstance(self.store, LocalStore):
            self.store.remove_dead_partials()

    def maintain(self) -> list[str]:
        """The periodic chores (Celery beat, or the embedded executor's timer): due webhook
        retries, clean-ups a faulty store refused, scratch left by killed processes. Returns
        the stale jobs to enqueue again. Each chore runs even if another fails."""
        stale: list[str] = []
        chores = {"webhook retries": self.redeliver_due,
                  "garbage": lambda: collect_garbage(self.sessions, self.store),
                  "scratch": self.remove_leftovers,
                  "stale jobs": lambda: stale.extend(self.requeue_stale()),
                  "batch dispatch": lambda: stale.extend(self.dispatch())}
        for name, chore in chores.items():
            try:
                chore()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("maintenance: %s failed: %s", name, exc)
        return stale

    def run(self, job_id: str, should_stop: Callable[[], bool] | None = None,
            ) -> JobState | None:
        """Every remaining stage, here and now (the in-process executor); stops early, with
        the job released, once `should_stop()` is true."""
        outcome = self.run_stage(job_id, should_stop=should_stop)
        while outcome.next_stage is not None and not (should_stop and should_stop()):
            if outcome.parts is not None:  # a parted stage: its parts, one after another
                if not outcome.parts:
                    break  # held by a worker gone with a previous process: the sweep resumes
                for index in outcome.parts:
                    if should_stop and should_stop():
                        return outcome.state
                    self.run_part(job_id, outcome.next_stage, index,
                                  should_stop=should_stop)
            outcome = self.run_stage(job_id, should_stop=should_stop)
        return outcome.state
