"""The platform's tables. One word per concept: tenant, API key, job, job event, upload,
identity, webhook delivery."""

from __future__ import annotations

import enum
import errno
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    insert,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    return uuid.uuid4().hex


_ID = re.compile(r"[0-9a-f]{32}")


def is_id(value: str) -> bool:
    """Whether `value` could be an id of ours: anything else (a NUL, which PostgreSQL will
    not even compare, or a megabyte of text) is unknown without asking the database."""
    return bool(_ID.fullmatch(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend: SQLite stores no zone and gives back
    naive datetimes, which would reach API answers without one."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, _dialect) -> datetime | None:  # noqa: ANN001
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    # Only a hash is stored; the key itself is shown once, when it is created.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Upload(Base):
    __tablename__ = "uploads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger)  # films pass 2 GiB
    # "ready", or "pending" while a direct (presigned multipart) upload is in progress; only
    # ready uploads can be job inputs.
    state: Mapped[str] = mapped_column(String(16), default="ready", server_default="ready")
    multipart_id: Mapped[str | None] = mapped_column(Text)  # the S3 upload id while pending
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Batch(Base):
    """Many dubs submitted as one manifest; each item is a job (Job.batch_id)."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    total: Mapped[int] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    batch_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    # (tenant, state): the in-flight limit and state-filtered listings read exactly this.
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),
                      Index("ix_jobs_tenant_state", "tenant_id", "state"))
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    # What the job does: "dub", or "identity.train" (train a person's restorer).
    kind: Mapped[str] = mapped_column(String(32), default="dub", server_default="dub")
    state: Mapped[JobState] = mapped_column(Enum(JobState, native_enum=False, length=16),
                                            default=JobState.QUEUED, index=True)
    stage: Mapped[str | None] = mapped_column(String(32))  # a stage of the job's plan
    # The finer step within the running stage (fetch, crops, train, upload...).
    phase: Mapped[str | None] = mapped_column(String(32))
    # A batch's item: its manifest line and result name. Batch items wait undispatched
    # until the tenant's fair share of workers has room (lipdub.jobs.batches.dispatch).
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"),
                                                 index=True)
    batch_line: Mapped[int | None] = mapped_column(Integer)
    output_name: Mapped[str | None] = mapped_column(String(128))
    dispatched: Mapped[bool] = mapped_column(default=True, server_default=true())
    progress: Mapped[int] = mapped_column(Integer, default=0)
    video_uri: Mapped[str] = mapped_column(Text)
    # None: a cast's job with no mix given (its lines are mixed)
    audio_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    job_metadata: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    result_key: Mapped[str | None] = mapped_column(String(512))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    # A worker holds a running job only while its lease is fresh (renewed as it progresses);
    # a job whose worker died can be claimed again once the lease has run out.
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The job's stages done so far and their artifacts (object-store keys): a stage that is
    # done is never run again, so a job interrupted anywhere resumes where it stopped.
    work: Mapped[dict | None] = mapped_column(JSON, default=dict)
    # A finished job whose working artifacts the store would not delete yet (full, down):
    # the maintenance sweep tries again.
    cleanup_pending: Mapped[bool] = mapped_column(default=False, server_default=false(),
                                                  index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                 index=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                 onupdate=utcnow)
    events: Mapped[list[JobEvent]] = relationship(back_populates="job",
                                                  order_by="JobEvent.id",
                                                  cascade="all, delete-orphan")
    # A new version of a job (a reviewer re-ran some shots): the job it was made from,
    # whose result gives every frame outside the re-run shots; 1 for a first version.
    base_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"),
                                                    index=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A parted stage's parts (a film's segments); read-only here (lipdub.jobs.parts).
    parts: Mapped[list[JobPart]] = relationship(order_by="JobPart.index", viewonly=True)


class JobEvent(Base):
    """Every state transition (and stage change) of a job, with its time."""

    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    state: Mapped[JobState] = mapped_column(Enum(JobState, native_enum=False, length=16))
    stage: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    job: Mapped[Job] = relationship(back_populates="events")


class PartState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


class JobPart(Base):
    """One part of a stage that runs in parts on any number of workers (a film's lip-sync
    stage, segment by segment): what it covers, who holds it until when, how often it was
    started (a finished part is never started again), and what it produced."""

    __tablename__ = "job_parts"
    __table_args__ = (UniqueConstraint("job_id", "stage", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    index: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JSON)  # e.g. the segment's frame range
    state: Mapped[PartState] = mapped_column(Enum(PartState, native_enum=False, length=16),
                                             default=PartState.PENDING)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    runs: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(128))  # host:pid of the last run
    frames_done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Identity(Base):
    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           index=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=0)
    # The latest version's folder in the object store ("tenants/<t>/identities/<name>/vN").
    storage_key: Mapped[str | None] = mapped_column(String(512))
    # The latest version's training record: config, evaluation, search table.
    info: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow,
                                                 onupdate=utcnow)


class ShotReview(Base):
    """A reviewer's decision on one shot of a job (one face of a cast's shot): the latest
    row for a (job, shot, face) is the shot's current decision; older rows are its
    history."""

    __tablename__ = "shot_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    shot: Mapped[int] = mapped_column(Integer)
    face: Mapped[str] = mapped_column(String(64), default="")
    decision: Mapped[str] = mapped_column(String(16))  # lipdub.jobs.review.Decision
    reason: Mapped[str | None] = mapped_column(String(32))  # lipdub.jobs.review.Reason
    severity: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    # A decision carried over from the version this job was made from (an approved shot
    # that was not re-run).
    carried_from: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """One attempt to deliver one webhook message (the same message id across retries)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ReadinessProbe(Base):
    """Never holds a row: readiness inserts one large enough to need new pages and rolls it
    back, so a database that cannot take writes (disk full, read-only) reports not ready."""

    __tablename__ = "readiness_probes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


# An embedded (SQLite) database needs room to grow: below this much free disk it is not
# ready, although a small write may still fit in the space its write-ahead log holds.
SQLITE_MIN_FREE_BYTES = 4 * 1024**2


def check_writable(session) -> None:  # noqa: ANN001 - Session
    """Raises the database's own error when it cannot take a write now."""
    url = session.get_bind().url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        free = shutil.disk_usage(Path(url.database).expanduser().parent).free
        if free < SQLITE_MIN_FREE_BYTES:
            raise OSError(errno.ENOSPC, f"the database's disk has {free} bytes free")
    session.execute(insert(ReadinessProbe).values(payload=bytes(16 * 1024)))
    session.rollback()
