"""Request and response bodies (pydantic)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from lipdub.blend import BlendMode
from lipdub.cast import MAX_CHARACTERS
from lipdub.db.models import Batch, Identity, Job, JobState, PartState, utcnow
from lipdub.engines.registry import ENGINE_NAMES
from lipdub.errors import BadOptionError
from lipdub.jobs.batches import counts
from lipdub.jobs.review import Decision, Reason, Severity
from lipdub.media.finish import CONTAINERS
from lipdub.output_profiles import OutputProfile
from lipdub.ranges import RANGE_PATTERN, check_characters, check_without_video
from lipdub.restore.gate import rejection
from lipdub.sync import SyncMode

# Engines by the core's names (adding one to the registry adds it here).
EngineName = StrEnum("EngineName", {name.upper(): name for name in ENGINE_NAMES})
OutputFormat = StrEnum("OutputFormat", {name.upper(): name for name in CONTAINERS})

MAX_URI_CHARS = 4096
METADATA_MAX_DEPTH = 8
METADATA_MAX_BYTES = 16 * 1024


def _bounded_metadata(value: dict) -> dict:
    """Metadata is the caller's own, echoed back and sent with webhooks: kept small and
    shallow so that storing and serialising it can never fail later."""
    level, depth = [value], 1
    while level:
        children = [v for item in level
                    for v in (item.values() if isinstance(item, dict) else item)
                    if isinstance(v, dict | list)]
        if children:
            depth += 1
            if depth > METADATA_MAX_DEPTH:
                raise ValueError(f"metadata nests deeper than {METADATA_MAX_DEPTH} levels")
        level = children
    if len(json.dumps(value)) > METADATA_MAX_BYTES:
        raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES} bytes as JSON")
    return value


Metadata = Annotated[dict, AfterValidator(_bounded_metadata),
                     Field(description=f"Yours, echoed back (at most {METADATA_MAX_DEPTH} "
                           f"levels deep, {METADATA_MAX_BYTES} bytes as JSON)")]
InputUri = Annotated[str, Field(min_length=1, max_length=MAX_URI_CHARS,
                                description="An upload id, s3://bucket/key or https:// URL")]
WebhookUrl = Annotated[str | None, Field(max_length=MAX_URI_CHARS)]


RangeSpec = Annotated[str, Field(max_length=40, pattern=RANGE_PATTERN)]
MAX_RANGES = 500
CharacterName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w .'-]+$")]
Pixels = Annotated[float, Field(ge=0, le=100_000)]
FrameNumber = Annotated[int, Field(ge=0, le=10**8)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FacePointIn(_Strict):
    frame: FrameNumber
    x: Pixels
    y: Pixels


class FaceBoxIn(_Strict):
    frame: FrameNumber
    box: list[Pixels] = Field(min_length=4, max_length=4, description="x0, y0, x1, y1")

    @field_validator("box")
    @classmethod
    def ordered(cls, box: list[float]) -> list[float]:
        if box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError("a box is [x0, y0, x1, y1] with x1 > x0 and y1 > y0")
        return box


class FaceBoxesIn(_Strict):
    boxes: InputUri = Field(description='A JSON file {"<frame>": [x0, y0, x1, y1], ...}: '
                                        "the face's box on each frame, used as given")


class RangeIn(_Strict):
    range: RangeSpec
    character: CharacterName | None = Field(None, description="A cast's character: only "
                                            "their face is dubbed in this range")
    audio: InputUri | None = Field(None, description="The range's own line (a re-take), "
                                   "heard and lip-synced from the range's start")


class CastMemberIn(_Strict):
    character: CharacterName
    audio: InputUri = Field(description="The character's new line (a dialogue stem)")
    original: InputUri | None = Field(None, description="Their original-language line: "
                                      "finds their face best (default: the new line)")
    face: Literal["auto"] | FacePointIn | FaceBoxIn | FaceBoxesIn = Field(
        "auto", description="auto: the face that speaks when the line is heard; or a point "
        "or a box on a frame (that person, through their shot); or per-frame boxes")

    def uris(self) -> list[str]:
        boxes = [self.face.boxes] if isinstance(self.face, FaceBoxesIn) else []
        return [self.audio, *([self.original] if self.original else []), *boxes]


class JobOptions(BaseModel):
    engine: EngineName = EngineName.AUTO
    sync_mode: SyncMode = SyncMode.CUT_OFF
    blend: BlendMode = Field(BlendMode.STANDARD, description="How far the new mouth "
                             "reaches into the face: soft (a wider feathered edge), "
                             "standard, tight (less of the face)")
    face: str = Field("largest", max_length=64,
                      pattern=r"^(largest|center|\d{1,3}|\d+(\.\d+)?(,\d+(\.\d+)?){3})$",
                      description="largest, center, a face index from the left (0, 1, ...) "
                      "or a box x,y,w,h in pixels")
    output_format: OutputFormat = OutputFormat.MP4
    normalise_loudness: bool = Field(False, description="EBU R128 loudness (-23 LUFS) for "
                                     "the new sound track")
    webhook_progress: bool = Field(False, description="Also send job.progress webhooks as "
                                   "each stage ends (once each, not retried)")
    identity: str | None = Field(None, description="Restore the dubbed face with this "
                                 "identity's trained restorer (see /v1/identities)")
    restore: Literal["none", "auto"] = Field(
        "none", description="auto: first train a restorer on this video's own face")
    ranges: list[RangeSpec | RangeIn] | None = Field(
        None, max_length=MAX_RANGES,
        description="Dub only these parts of the output, START-END each: seconds "
        "(12.5-14), frames (300f-350f) or SMPTE timecode at the video's rate "
        "(00:00:12:12-00:00:14:00); or {range, character, audio}: one character's face, "
        "and the range's own line. Frames outside every range stay as filmed; each range "
        "fades in and out over 4 frames. Checked against the video when the job starts.")
    cast: list[CastMemberIn] | None = Field(
        None, min_length=1, max_length=MAX_CHARACTERS,
        description="Several characters dubbed at once, each face with its own line; the "
        "job's audio, if given, is the full mix the output sounds like")
    output_profile: OutputProfile = Field(
        OutputProfile.DELIVERY, description="delivery: H.264/AAC (output_format); match: a "
        "master in the source's own format (ProRes, DNxHR in MOV or MXF: codec, profile, "
        "bit depth, chroma, colour tags, timecode, every other audio stream copied)")
    replace_audio_stream: Annotated[int, Field(ge=0, le=63)] | Annotated[
        str, Field(pattern=r"^[a-z]{3}$")] | None = Field(
        None, description="match: the source's audio stream the new dialogue replaces, by "
        "index (0, 1, ...) or language tag (eng); default: added as a new stream")
    review_copy: bool = Field(False, description="match: also make an H.264/AAC MP4 "
                              "review copy from the master (GET .../result?copy=review)")
    dialogue_language: str | None = Field(
        None, pattern=r"^[a-z]{3}$", description="match: the added dialogue stream's "
        "language (ISO 639-2, e.g. fra)")
    reuse_analysis: str | None = Field(
        None, max_length=64, description="A finished cast job of yours on the same video: "
        "its face analysis is re-used (a corrected cast runs without analysing again)")

    @model_validator(mode="after")
    def consistent(self) -> JobOptions:
        if self.identity and self.restore == "auto":
            raise ValueError("give identity or restore: auto, not both")
        if self.cast and (self.identity or self.restore != "none" or self.face != "largest"):
            raise ValueError("face, identity and restore are for a one-face dub: with a "
                             "cast, give each character's face in the cast (restoration of "
                             "a cast is not supported)")
        if self.cast and len({c.character for c in self.cast}) < len(self.cast):
            raise ValueError("cast: each character must have its own name")
        if self.reuse_analysis and not self.cast:
            raise ValueError("reuse_analysis is for a cast's job")
        self.check_master()
        try:
            check_characters(self.range_specs(), [c.character for c in self.cast or []])
        except BadOptionError as error:
            raise ValueError(str(error)) from None
        return self

    def check_master(self) -> None:
        """What a master (match, or its patches) cannot do (yet), and what only it can."""
        if self.review_copy and self.output_profile is not OutputProfile.MATCH:
            raise ValueError("review_copy is made from a master: output_profile match")
        if self.output_profile is OutputProfile.DELIVERY:
            if self.replace_audio_stream is not None or self.dialogue_language:
                raise ValueError("replace_audio_stream and dialogue_language are for "
                                 "output_profile match")
            return
        profile = self.output_profile.value
        if self.identity or self.restore != "none" or self.normalise_loudness:
            raise ValueError(f"output_profile {profile} does not take identity, restore or "
                             "normalise_loudness (a master's sound is copied as it is)")
        if self.sync_mode in (SyncMode.LOOP, SyncMode.BOUNCE):
            raise ValueError(f"output_profile {profile} keeps the source's frames: "
                             "sync_mode loop and bounce repeat them")
        if "output_format" in self.model_fields_set:
            raise ValueError(f"output_profile {profile} writes the source's container: "
                             "leave output_format out")

    def range_specs(self) -> list[str | dict]:
        """The ranges as the core reads them."""
        return [r if isinstance(r, str) else r.model_dump(exclude_none=True)
                for r in self.ranges or []]

    def retake_uris(self) -> list[str]:
        return [r.audio for r in self.ranges or [] if isinstance(r, RangeIn) and r.audio]

    @field_validator("ranges")
    @classmethod
    def ranges_in_order(cls, ranges: list[str | RangeIn] | None) -> list | None:
        if ranges:
            try:
                check_without_video([r if isinstance(r, str)
                                     else r.model_dump(exclude_none=True) for r in ranges])
            except BadOptionError as error:
                raise ValueError(str(error)) from None
        return ranges


class JobCreate(BaseModel):
    video: InputUri
    audio: InputUri | None = Field(None, description="The new sound track (with a cast: "
                                   "the full mix; default: the characters' lines mixed)")
    options: JobOptions = JobOptions()
    webhook_url: WebhookUrl = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def some_audio(self) -> JobCreate:
        if self.audio is None and not self.options.cast and not self.options.retake_uris():
            raise ValueError("audio is required (or options.cast, each character's line, or "
                             "ranges with their own audio)")
        return self

    def input_uris(self) -> list[str]:
        """Every input the job names: each is checked against the caller's tenant."""
        cast = [uri for member in self.options.cast or [] for uri in member.uris()]
        return [self.video, *([self.audio] if self.audio else []), *cast,
                *self.options.retake_uris()]


class JobEventOut(BaseModel):
    state: JobState
    stage: str | None
    message: str | None
    at: datetime


class JobOut(BaseModel):
    id: str
    kind: str
    state: JobState
    stage: str | None = Field(description="The stage of the job's plan running or next "
                                          "(probe, faces, lip-sync, ...); 'done' when over")
    phase: str | None = Field(None, description="The finer step within the running stage "
                                                "(fetch, crops, train, upload, ...)")
    stages_done: list[str] = Field(description="The job's stages finished so far")
    progress: int
    eta_seconds: float | None = Field(None, description="Estimated seconds to finish, from "
                                                        "the progress rate so far")
    segments: dict[str, int] | None = Field(None, description="A film rendered in segments "
                                            "on many workers: how many are done, of all")
    options: dict
    metadata: dict
    error_code: str | None
    error_message: str | None
    timings: dict
    cast: list[dict] | None = Field(None, description="A cast's job: per shot, each person "
                                    "on screen, the character they were cast as (or none), "
                                    "the confidence and whether it was found or given")
    version: int = Field(1, description="1, or the version number of a job made by "
                         "re-running shots of another (base_job)")
    base_job: str | None = None
    qc: dict | None = Field(None, description="The QC summary (flagged shots, flags, the "
                            "worst); the whole report: GET /v1/jobs/{id}/qc")
    review_copy: bool = Field(False, description="A review copy of the master is ready "
                              "(GET /v1/jobs/{id}/result?copy=review)")
    source_format: dict | None = Field(None, description="The source video as the probe "
                                       "stage read it: codec, profile, bit depth, chroma, "
                                       "colour tags, scan, timecode, reel, audio streams")
    created_at: datetime
    updated_at: datetime
    events: list[JobEventOut]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(id=job.id, kind=job.kind, state=job.state, stage=job.stage,
                   phase=job.phase, progress=job.progress, eta_seconds=_eta(job),
                   segments={"done": sum(p.state is PartState.DONE for p in job.parts),
                             "total": len(job.parts)} if job.parts else None,
                   stages_done=(job.work or {}).get("done", []),
                   cast=(job.work or {}).get("cast_report"),
                   source_format=(job.work or {}).get("source_format"),
                   review_copy="review" in (job.work or {}),
                   qc=(job.work or {}).get("qc_summary"), version=job.version,
                   base_job=job.base_job_id,
                   options=job.options, metadata=job.job_metadata, error_code=job.error_code,
                   error_message=job.error_message, timings=job.timings or {},
                   created_at=job.created_at, updated_at=job.updated_at,
                   events=[JobEventOut(state=e.state, stage=e.stage, message=e.message, at=e.at)
                           for e in job.events])


def _eta(job: Job) -> float | None:
    """Time left at the rate the job has progressed since it started (None before there
    is a rate, or once it has ended)."""
    started = next((e.at for e in job.events if e.state is JobState.RUNNING), None)
    if job.state is not JobState.RUNNING or started is None or not 0 < job.progress < 100:
        return None
    elapsed = (utcnow() - started).total_seconds()
    return round(elapsed * (100 - job.progress) / job.progress, 1)


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: str | None


class UploadOut(BaseModel):
    id: str
    filename: str
    size_bytes: int


class DirectUploadCreate(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size_bytes: int = Field(gt=0, le=2**63 - 1, description="The file's exact size")


class DirectUploadOut(BaseModel):
    id: str
    part_bytes: int
    part_urls: list[str] = Field(description="PUT part N (1-based) to part_urls[N-1]")
    expires_in_s: int


class DirectUploadComplete(BaseModel):
    etags: list[Annotated[str, Field(max_length=256)]] = Field(
        min_length=1, max_length=10_000, description="Each part's ETag, in part order")


class QCShotOut(BaseModel):
    shot: int
    face: str = Field(description="The character (a cast), or '' for a dub's one face")
    start_frame: int = Field(description="First output frame of the shot")
    stop_frame: int = Field(description="One past its last output frame")
    dubbed_frames: int
    sync: dict = Field(description="offset_frames (+: the picture is late), correlation "
                                   "of the mouth's opening with the new line's loudness")
    reference_sync: dict = Field(description="The same on the source, with its own sound")
    closure: dict = Field(description="The line's pauses (>= 100 ms) and how many the "
                                      "mouth spent closed")
    seam: dict = Field(description="Gradient along the blend edge: dub, source, added")
    colour: dict = Field(description="Chroma contrast of the re-synced region with its "
                                     "surroundings: dub, source, added")
    jitter: dict = Field(description="Mouth shake against the face: dub, source, ratio")
    flags: list[str]


class QCReportOut(BaseModel):
    fps: float
    frames: int
    coverage: dict = Field(description="Output frames, frames with and without a face, "
                                       "frames passed through, shots, shots dubbed")
    summary: dict = Field(description="Flagged shots, counts per flag, the worst three")
    thresholds: dict
    shots: list[QCShotOut]


class ReviewIn(_Strict):
    shot: int = Field(ge=0, le=1_000_000)
    face: str = Field("", max_length=64, description="A cast's character ('' for a dub's "
                      "one face)")
    decision: Decision
    reason: Reason | None = Field(None, description="Why it was rejected (required then)")
    severity: Severity | None = None
    comment: str | None = Field(None, max_length=2000)


class RerunOptions(_Strict):
    engine: EngineName | None = None
    face: str | None = Field(None, max_length=64, description="largest, center, an index "
                             "or x,y,w,h")
    identity: str | None = Field(None, max_length=64)
    blend: BlendMode | None = None


class VersionCreate(_Strict):
    shots: list[Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        min_length=1, max_length=1000, description="The shots to re-run (every face in "
        "them); the others are kept from this job's result")
    options: RerunOptions = RerunOptions()


class ReviewOut(BaseModel):
    job: str
    version: int
    state: str = Field(description="pending | changes_requested | approved")
    shots: list[dict] = Field(description="Each shot QC measured: frames, flags, and its "
                              "current decision")
    versions: list[dict] = Field(description="The job's line of versions, oldest first")


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
    videos: list[InputUri] = Field(min_length=1, max_length=20,
                                   description="Footage of the person: upload ids, s3:// or "
                                   "https://")
    search: bool = Field(False, description="Try a few latent/codebook settings, keep the best")
    steps: int | None = Field(None, ge=10, le=200_000, description="Training steps per setting")
    webhook_url: WebhookUrl = None
    metadata: Metadata = Field(default_factory=dict)


class IdentityOut(BaseModel):
    name: str
    version: int
    config: dict
    evaluation: dict
    accepted: bool = Field(description="Passed the quality gate: its restored held-out "
                           "faces beat the degraded input on every measure. A rejected "
                           "version is never applied; dubs that ask for it say so.")
    rejected_because: list[str] = Field(description="The measures it was not better on")
    search: list[dict]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, identity: Identity) -> IdentityOut:
        info = identity.info or {}
        reasons = rejection(info)
        return cls(name=identity.name, version=identity.version,
                   config=info.get("config", {}), evaluation=info.get("evaluation", {}),
                   accepted=not reasons, rejected_because=reasons,
                   search=info.get("search", []), created_at=identity.created_at,
                   updated_at=identity.updated_at)


OutputName = Annotated[str, Field(min_length=1, max_length=128,
                                  pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$",
                                  description="The item's result name, unique in the batch")]


class BatchLine(BaseModel):
    """One line of a batch manifest: a dub."""

    model_config = {"extra": "forbid"}  # a misspelt field is an error, not ignored
    video: InputUri
    audio: InputUri
    options: JobOptions = JobOptions()
    identity: str | None = Field(None, max_length=64,
                                 description="Shorthand for options.identity")
    output_name: OutputName | None = None
    metadata: Metadata = Field(default_factory=dict)


class BatchItemOut(BaseModel):
    line: int
    output_name: str | None
    job_id: str
    state: JobState
    progress: int
    error_code: str | None
    result_url: str | None = Field(description="GET it for the result, once succeeded")


class BatchOut(BaseModel):
    id: str
    total: int
    counts: dict[str, int] = Field(description="Items by state")
    progress: int = Field(description="The items' mean progress")
    eta_seconds: float | None
    completed_at: datetime | None
    created_at: datetime
    items: list[BatchItemOut]

    @classmethod
    def of(cls, batch: Batch, jobs: list[Job]) -> BatchOut:
        progress = round(sum(j.progress for j in jobs) / len(jobs)) if jobs else 0
        elapsed = (utcnow() - batch.created_at).total_seconds()
        eta = (round(elapsed * (100 - progress) / progress, 1)
               if 0 < progress < 100 and batch.completed_at is None else None)
        return cls(id=batch.id, total=batch.total, counts=counts(jobs), progress=progress,
                   eta_seconds=eta, completed_at=batch.completed_at,
                   created_at=batch.created_at,
                   items=[BatchItemOut(line=j.batch_line or 0, output_name=j.output_name,
                                       job_id=j.id, state=j.state, progress=j.progress,
                                       error_code=j.error_code,
                                       result_url=f"/v1/jobs/{j.id}/result"
                                       if j.state is JobState.SUCCEEDED else None)
                          for j in jobs])


class BatchPage(BaseModel):
    batches: list[BatchOut]
    next_cursor: str | None
