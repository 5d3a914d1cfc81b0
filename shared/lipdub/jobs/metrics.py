"""What an operator watches on the job platform, exported by whichever process does the work
(the workers' metrics port; the gateway's /metrics when it runs jobs itself): jobs ended by
kind and outcome, stage durations, frames processed (rate() gives frames/s), webhook
attempts and input fetch failures. prometheus-client's default registry: one set per
process, however many job contexts it builds.

Label sets that alerts divide by are created at zero up front: a rate over a series that
does not exist yet is no data, not 0, and an alert on it could never resolve."""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Histogram

from lipdub.db.models import Job
from lipdub.progress import MOUTHS

JOBS_ENDED = Counter("lipdub_jobs_ended_total", "Jobs that reached an end, by kind and outcome",
                     ["kind", "outcome"])
STAGE_SECONDS = Histogram(
    "lipdub_stage_duration_seconds", "Wall time of one stage (or one part of a parted "
    "stage) on a worker", ["stage"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200))
FRAMES = Counter("lipdub_frames_processed_total", "Video frames through a frame phase",
                 ["phase"])
WEBHOOK_ATTEMPTS = Counter("lipdub_webhook_attempts_total", "Webhook delivery attempts by "
                           "result (delivered: 2xx; failed: another answer or none; refused: "
                           "the target failed the SSRF guard)", ["result"])
FETCH_FAILURES = Counter("lipdub_fetch_failures_total", "Input URLs that could not be "
                         "fetched, by reason", ["reason"])


class WebhookResult(StrEnum):
    DELIVERED = "delivered"  # a 2xx
    FAILED = "failed"  # another answer, or none
    REFUSED = "refused"  # the target failed the SSRF guard


class FetchFailure(StrEnum):
    UNREACHABLE = "unreachable"  # no answer after the retries
    REFUSED = "refused"  # the SSRF guard
    TOO_LARGE = "too_large"
    REJECTED = "rejected"  # a 4xx, too many redirects


# The progress phases whose units are video frames (lipdub.pipeline, lipdub.scene and
# lipdub.qc report them); other phases count files, bytes or training steps.
FRAME_PHASES = ("faces", MOUTHS, "lip-sync", "qc")

for _phase in FRAME_PHASES:
    FRAMES.labels(_phase)
for _result in WebhookResult:
    WEBHOOK_ATTEMPTS.labels(_result)
for _reason in FetchFailure:
    FETCH_FAILURES.labels(_reason)


def frames_advanced(phase: str, amount: int) -> None:
    if phase in FRAME_PHASES and amount > 0:
        FRAMES.labels(phase).inc(amount)


def job_ended(job: Job) -> None:
    JOBS_ENDED.labels(job.kind, job.state.value).inc()
