"""Webhook deliveries: one signed message per terminal job state, every attempt recorded,
retried on an exponential schedule that spans more than 24 hours."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from lipdub.db.models import Batch, Job, WebhookDelivery, utcnow
from lipdub.errors import LipDubError
from lipdub.jobs.metrics import WEBHOOK_ATTEMPTS, WebhookResult
from lipdub.webhooks import signed_headers

# Seconds after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 24 h, 30 h.
RETRY_SCHEDULE_S = [5, 300, 1800, 7200, 18000, 36000, 50400, 86400, 108000]


def webhook_secret(configured: str | None, folder: Path) -> str:
    """The configured secret, or one generated once and kept in `folder` (mode 0600)."""
    return kept_secret(configured, folder / "webhook_secret", "whsec_")


def kept_secret(configured: str | None, path: Path, prefix: str = "") -> str:
    """The configured secret, or one generated once into `path` (mode 0600): every process
    on this machine shares it; several machines share a configured one."""
    if configured:
        return configured
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = prefix + base64.b64encode(secrets.token_bytes(24)).decode()
        with suppress(FileExistsError):  # another process made it first: use theirs
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secret)
    return path.read_text().strip()


def message_for(job: Job) -> tuple[str, str, bytes]:
    """(message id, event type, body). The id is fixed per job and state, so a retried or
    re-sent delivery carries the same id and receivers can de-duplicate."""
    event_type = f"job.{job.state.value}"
    body = json.dumps({"type": event_type, "data": {
        "id": job.id, "state": job.state.value, "error_code": job.error_code,
        "error_message": job.error_message, "metadata": job.job_metadata,
        "qc": (job.work or {}).get("qc_summary")}},
        sort_keys=True).encode()
    return f"msg_{job.id}_{job.state.value}", event_type, body


def progress_message_for(job: Job, stage_done: str) -> tuple[str, str, bytes]:
    """A stage finished (for receivers that asked for progress)."""
    body = json.dumps({"type": "job.progress", "data": {
        "id": job.id, "state": job.state.value, "stage_done": stage_done,
        "next_stage": job.stage, "progress": job.progress, "metadata": job.job_metadata}},
        sort_keys=True).encode()
    return f"msg_{job.id}_stage_{stage_done}", "job.progress", body


def review_message_for(job: Job, review: dict, serial: int) -> tuple[str, str, bytes]:
    """The job's review state changed (all approved, or changes requested)."""
    body = json.dumps({"type": "job.review", "data": {
        "id": job.id, "version": job.version, "review_state": review["state"],
        "rejected_shots": [s["shot"] for s in review["shots"]
                           if s["decision"] == "rejected"],
        "metadata": job.job_metadata}}, sort_keys=True).encode()
    return f"msg_{job.id}_review_{serial}", "job.review", body


BATCH_COMPLETED = "batch.completed"


def batch_message(batch: Batch, counts: dict[str, int]) -> tuple[str, str, bytes]:
    """Every item of a batch ended (sent with the last item's ending; its id is fixed, so
    a retried delivery can be de-duplicated)."""
    body = json.dumps({"type": BATCH_COMPLETED, "data": {
        "id": batch.id, "total": batch.total, "counts": counts,
        "metadata": batch.batch_metadata}}, sort_keys=True).encode()
    return f"msg_{batch.id}_completed", BATCH_COMPLETED, body


def delivered(session: Session, job: Job) -> bool:
    """Whether the job's current message already reached its receiver."""
    message_id, _, _ = message_for(job)
    return session.scalar(select(WebhookDelivery.id).where(
        WebhookDelivery.message_id == message_id, WebhookDelivery.status_code >= 200,
        WebhookDelivery.status_code < 300)) is not None


def deliver(session: Session, job: Job, secret: str, client: httpx.Client,
            check_target: Callable[[str], None] | None = None,
            message: tuple[str, str, bytes] | None = None,
            retry: bool | None = None) -> WebhookDelivery:
    """One attempt; records it and when the next one is due (None once delivered or when the
    schedule is exhausted). `check_target(url)` vets the URL again at send time (its DNS
    may have changed since the job was accepted; the guarded client checks the address it
    connects to as well); a refused target is not retried.
    `message`: another message than the job's terminal one (progress: sent once, no
    retries, since a later one supersedes it); `retry`: retried on failure (default: the
    terminal message only)."""
    message_id, event_type, body = message or message_for(job)
    attempt = 1 + len(list(session.scalars(select(WebhookDelivery.id).where(
        WebhookDelivery.message_id == message_id))))
    record = WebhookDelivery(job_id=job.id, message_id=message_id, event_type=event_type,
                             attempt=attempt)
    ok = refused = False
    try:
        if check_target is not None:
            check_target(job.webhook_url)
        response = client.post(job.webhook_url, content=body,
                               headers=signed_headers(secret, message_id, body), timeout=10)
        record.status_code = response.status_code
        ok = 200 <= response.status_code < 300
    except LipDubError as exc:  # the SSRF guard refused the target, early or at connect
        record.error, refused = str(exc), True
    except httpx.HTTPError as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    WEBHOOK_ATTEMPTS.labels(WebhookResult.DELIVERED if ok else WebhookResult.REFUSED if refused
                            else WebhookResult.FAILED).inc()
    retried = message is None if retry is None else retry
    if not ok and not refused and retried and attempt <= len(RETRY_SCHEDULE_S):
        record.next_attempt_at = utcnow() + timedelta(seconds=RETRY_SCHEDULE_S[attempt - 1])
    session.add(record)
    session.commit()
    return record


def due_deliveries(session: Session) -> list[tuple[Job, str]]:
    """(job, event type) of every message whose latest attempt failed and is due for a
    retry now: a job's terminal message, or the batch.completed its last item sent."""
    latest = select(WebhookDelivery).where(WebhookDelivery.next_attempt_at.is_not(None),
                                           WebhookDelivery.next_attempt_at <= utcnow())
    due: dict[str, tuple[Job, str]] = {}
    for row in session.scalars(latest):
        newer = session.scalar(select(WebhookDelivery.id).where(
            WebhookDelivery.message_id == row.message_id, WebhookDelivery.id > row.id))
        if newer is None:
            due[row.message_id] = (session.get(Job, row.job_id), row.event_type)
    return list(due.values())
