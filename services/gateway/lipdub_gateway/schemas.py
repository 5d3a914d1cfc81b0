"""Request and response bodies (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from lipdub.db.models import Job, JobState


class JobOptions(BaseModel):
    engine: Literal["auto", "wav2lip", "warp"] = "auto"
    sync_mode: Literal["cut_off", "loop", "bounce", "silence"] = "cut_off"
    face: str = "largest"
    output_format: Literal["mp4"] = "mp4"


class JobCreate(BaseModel):
    video: str = Field(description="An upload id, s3://bucket/key or https:// URL")
    audio: str = Field(description="An upload id, s3://bucket/key or https:// URL")
    options: JobOptions = JobOptions()
    webhook_url: str | None = None
    metadata: dict = Field(default_factory=dict)


class JobEventOut(BaseModel):
    state: JobState
    stage: str | None
    message: str | None
    at: datetime


class JobOut(BaseModel):
    id: str
    state: JobState
    stage: str | None
    progress: int
    options: dict
    metadata: dict
    error_code: str | None
    error_message: str | None
    timings: dict
    created_at: datetime
    updated_at: datetime
    events: list[JobEventOut]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(id=job.id, state=job.state, stage=job.stage, progress=job.progress,
                   options=job.options, metadata=job.job_metadata, error_code=job.error_code,
                   error_message=job.error_message, timings=job.timings or {},
                   created_at=job.created_at, updated_at=job.updated_at,
                   events=[JobEventOut(state=e.state, stage=e.stage, message=e.message, at=e.at)
                           for e in job.events])


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None


class UploadOut(BaseModel):
    id: str
    filename: str
    size_bytes: int


class DeliveryOut(BaseModel):
    message_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None
    at: datetime
