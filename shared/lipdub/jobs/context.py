"""Everything a job needs to run, built once from the settings: shared by the gateway's
in-process executor and the Celery worker so that both run jobs exactly alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

from lipdub.config import Settings
from lipdub.db.models import Job, JobState
from lipdub.db.session import session_factory
from lipdub.jobs.dubbing import discard_work, dub_stages, prune_local_copies
from lipdub.jobs.fetch import UrlFetcher
from lipdub.jobs.identities import TRAIN_KIND, identity_training_stages
from lipdub.jobs.limits import check_media_limits
from lipdub.jobs.notify import deliver, progress_message_for, webhook_secret
from lipdub.jobs.runner import Stage, StageOutcome, run_stage
from lipdub.netguard import check_url
from lipdub.storage import ObjectStore, store_from_settings


@dataclass
class JobContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: ObjectStore
    webhook_secret: str
    http: httpx.Client
    fetch_url: UrlFetcher

    @classmethod
    def from_settings(cls, settings: Settings) -> JobContext:
        http = httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
        return cls(
            settings=settings,
            sessions=session_factory(settings.database_url),
            store=store_from_settings(settings),
            webhook_secret=webhook_secret(settings.webhook_secret, settings.storage_dir.parent),
            http=http,
            fetch_url=UrlFetcher(http, settings.max_upload_bytes, settings.allow_http_urls,
                                 frozenset(settings.url_allow_hosts)),
        )

    def check_target(self, url: str) -> None:
        """The SSRF guard with this platform's settings (inputs and webhooks alike)."""
        check_url(url, self.settings.allow_http_urls, frozenset(self.settings.url_allow_hosts))

    def notify(self, session: Session, job: Job) -> object:
        return deliver(session, job, self.webhook_secret, self.http,
                       check_target=self.check_target)

    def notify_progress(self, session: Session, job: Job, stage_done: str) -> None:
        """A stage finished: tell receivers that asked for progress (best effort)."""
        if job.webhook_url and (job.options or {}).get("webhook_progress"):
            deliver(session, job, self.webhook_secret, self.http,
                    check_target=self.check_target,
                    message=progress_message_for(job, stage_done))

    def check_inputs(self, video: Path, _audio: Path) -> None:
        check_media_limits(video, self.settings.max_input_seconds,
                           self.settings.max_input_width, self.settings.max_input_height)

    def plans(self) -> dict[str, list[Stage]]:
        s = self.settings
        return {"dub": dub_stages(s, self.check_inputs),
                TRAIN_KIND: identity_training_stages(s.restore_steps, s.restore_batch_size,
                                                     s.device)}

    def run_stage(self, job_id: str,
                  notify: Callable[[Session, Job], object] | None = None) -> StageOutcome:
        """The job's next stage (a worker's task). `notify` replaces sending the webhook
        here and now (a worker hands it to its own task instead)."""
        prune_local_copies(self.sessions)
        return run_stage(job_id, self.sessions, self.store, self.plans(),
                         fetch_url=self.fetch_url, notify=notify or self.notify,
                         lease_s=self.settings.job_lease_s,
                         on_finish=lambda job: discard_work(self.store, job)
                         if job.state is not JobState.SUCCEEDED else None,
                         on_stage_done=self.notify_progress)

    def run(self, job_id: str) -> JobState | None:
        """Every remaining stage, here and now (the in-process executor)."""
        outcome = self.run_stage(job_id)
        while outcome.next_stage is not None:
            outcome = self.run_stage(job_id)
        return outcome.state
