"""Request and response bodies (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from lipdub.db.models import Identity, Job, JobState


class JobOptions(BaseModel):
    engine: Literal["auto", "wav2lip", "warp"] = "auto"
    sync_mode: Literal["cut_off", "loop", "bounce", "silence"] = "cut_off"
    face: str = "largest"
    output_format: Literal["mp4", "mov", "mkv"] = "mp4"
    normalise_loudness: bool = Field(False, description="EBU R128 loudness (-23 LUFS) for "
                                     "the new sound track")
    webhook_progress: bool = Field(False, description="Also send job.progress webhooks as "
                                   "each stage ends (once each, not retried)")
    identity: str | None = Field(None, description="Restore the dubbed face with this "
                                 "identity's trained restorer (see /v1/identities)")
    restore: Literal["none", "auto"] = Field(
        "none", description="auto: first train a restorer on this video's own face")

    @model_validator(mode="after")
    def one_restorer(self) -> JobOptions:
        if self.identity and self.restore == "auto":
            raise ValueError("give identity or restore: auto, not both")
        return self


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
    kind: str
    state: JobState
    stage: str | None
    stages_done: list[str] = Field(description="The job's stages finished so far")
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
        return cls(id=job.id, kind=job.kind, state=job.state, stage=job.stage,
                   progress=job.progress, stages_done=(job.work or {}).get("done", []),
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


class DirectUploadCreate(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size_bytes: int = Field(gt=0, description="The file's exact size")


class DirectUploadOut(BaseModel):
    id: str
    part_bytes: int
    part_urls: list[str] = Field(description="PUT part N (1-based) to part_urls[N-1]")
    expires_in_s: int


class DirectUploadComplete(BaseModel):
    etags: list[str] = Field(min_length=1, description="Each part's ETag, in part order")


class DeliveryOut(BaseModel):
    message_id: str
    event_type: str
    attempt: int
    status_code: int | None
    error: str | None
    next_attempt_at: datetime | None
    at: datetime


class IdentityCreate(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    videos: list[str] = Field(min_length=1, max_length=20,
                              description="Footage of the person: upload ids, s3:// or https://")
    search: bool = Field(False, description="Try a few latent/codebook settings, keep the best")
    steps: int | None = Field(None, ge=10, le=200_000, description="Training steps per setting")
    webhook_url: str | None = None
    metadata: dict = Field(default_factory=dict)


class IdentityOut(BaseModel):
    name: str
    version: int
    config: dict
    evaluation: dict
    search: list[dict]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, identity: Identity) -> IdentityOut:
        info = identity.info or {}
        return cls(name=identity.name, version=identity.version,
                   config=info.get("config", {}), evaluation=info.get("evaluation", {}),
                   search=info.get("search", []), created_at=identity.created_at,
                   updated_at=identity.updated_at)
