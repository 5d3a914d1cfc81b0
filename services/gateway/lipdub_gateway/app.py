"""FastAPI application factory: routes per resource, dependencies for auth, db, storage.

No `from __future__ import annotations` here: FastAPI must see the dependency aliases
defined inside `create_app` as objects, not strings."""


from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, FastAPI, Header, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from lipdub.config import Settings, get_settings
from lipdub.db.models import Identity, Job, JobState, Upload, WebhookDelivery, new_id
from lipdub.db.session import upgrade
from lipdub.errors import LipDubError
from lipdub.jobs.context import JobContext
from lipdub.jobs.executor import InProcessExecutor
from lipdub.jobs.identities import (
    TRAIN_KIND,
    IdentityNotFoundError,
    delete_identity,
    get_identity,
    list_identities,
)
from lipdub.jobs.keys import TenantRef, hash_key, tenant_for_key_hash
from lipdub.jobs.service import (
    IdempotencyConflictError,
    JobNotFoundError,
    JobRequest,
    TooManyJobsError,
    create_job,
    get_job,
    list_jobs,
    request_cancel,
)
from lipdub.jobs.uploads import (
    UploadNotFoundError,
    UploadTooLargeError,
    abort_direct_upload,
    complete_direct_upload,
    start_direct_upload,
)
from lipdub.netguard import check_url
from lipdub.storage import LocalStore, tenant_key
from lipdub_gateway.body_limit import BodyLimit
from lipdub_gateway.metrics import RequestTimer
from lipdub_gateway.problems import Problem, not_found, problem_handler
from lipdub_gateway.schemas import (
    DeliveryOut,
    DirectUploadComplete,
    DirectUploadCreate,
    DirectUploadOut,
    IdentityCreate,
    IdentityOut,
    JobCreate,
    JobOut,
    JobPage,
    UploadOut,
)

FORM_OVERHEAD_BYTES = 64 * 1024
JSON_BODY_LIMIT_BYTES = 1024 * 1024  # jobs, identities: far more than any real request


def create_app(settings: Settings | None = None, run_jobs: bool = True) -> FastAPI:
    settings = settings or get_settings()
    context = JobContext.from_settings(settings)
    sessions, store = context.sessions, context.store
    registry = CollectorRegistry()
    submitted = Counter("lipdub_jobs_submitted_total", "Jobs accepted", registry=registry)
    latency = Histogram("lipdub_http_request_seconds", "Request latency", ["route"],
                        registry=registry)
    executor = None
    queue = None
    if settings.executor == "celery":
        from celery import Celery

        # Only the broker is needed to enqueue; the task code lives in the worker.
        queue = Celery("lipdub", broker=settings.broker_url)
    if run_jobs and settings.executor == "inprocess":
        executor = InProcessExecutor(sessions, context.run)
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Iterator[None]:
        upgrade(settings.database_url)  # migrations run on start
        if executor is not None:
            executor.start()
        yield
        if executor is not None:
            executor.stop()

    app = FastAPI(title="LipDub", version="1", lifespan=lifespan)
    app.add_exception_handler(Problem, problem_handler)

    @app.exception_handler(LipDubError)
    async def bad_input(request: Request, exc: LipDubError):  # noqa: ANN202
        return await problem_handler(request, Problem(400, "Bad request", str(exc), exc.code))

    app.add_middleware(RequestTimer, histogram=latency)

    def body_limit(scope: dict) -> int | None:
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return None
        if scope["path"] == "/v1/uploads":  # the file plus the form's own framing
            return settings.max_upload_bytes + FORM_OVERHEAD_BYTES
        return JSON_BODY_LIMIT_BYTES

    app.add_middleware(BodyLimit, limit_for=body_limit)

    def db() -> Iterator[Session]:
        with sessions() as session:
            yield session

    def lookup_key(key_hash: str) -> TenantRef | None:
        with sessions() as session:
            return tenant_for_key_hash(session, key_hash)

    # Verified keys only (a bounded cache: unknown keys cannot fill it). Touched only on the
    # event loop's thread, so it needs no lock.
    known_keys: TTLCache[str, TenantRef] = TTLCache(maxsize=10_000, ttl=settings.auth_cache_s)

    async def tenant(authorization: Annotated[str | None, Header()] = None,
                     x_api_key: Annotated[str | None, Header()] = None) -> TenantRef:
        key = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
        digest = hash_key(key) if key else None
        found = known_keys.get(digest) if digest else None
        if found is None and digest:
            found = await run_in_threadpool(lookup_key, digest)
            if found is not None:
                known_keys[digest] = found
        if found is None:
            raise Problem(401, "Unauthorized", "A valid API key is required "
                          "(Authorization: Bearer KEY or X-API-Key).", "unauthorized",
                          {"WWW-Authenticate": "Bearer"})
        return found

    Db = Annotated[Session, Depends(db)]
    Caller = Annotated[TenantRef, Depends(tenant)]

    def owned_job(job_id: str, session: Db, caller: Caller) -> Job:
        """The caller's job; another tenant's job does not exist for them (404, not 403)."""
        try:
            return get_job(session, caller.id, job_id)
        except JobNotFoundError as exc:
            raise not_found("job", job_id) from exc

    OwnedJob = Annotated[Job, Depends(owned_job)]

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok"}

    def broker_reachable() -> None:
        if queue is not None:
            with queue.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)

    @app.get("/readyz")
    def readyz(session: Db) -> dict:
        """Ready when the database, the object store and (with Celery) the broker answer."""
        checks = {"database": lambda: session.execute(text("select 1")),
                  "storage": store.ping, "broker": broker_reachable}
        for name, check in checks.items():
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                raise Problem(503, "Not ready", f"{name} unreachable: {exc}",
                              "not_ready") from exc
        return {"status": "ready"}

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def check_input(uri: str, caller: TenantRef, session: Session) -> None:
        if uri.startswith(("https://", "http://")):
            check_url(uri, settings.allow_http_urls, frozenset(settings.url_allow_hosts))
        elif not uri.startswith("s3://"):
            upload = session.get(Upload, uri.removeprefix("upload:"))
            if upload is None or upload.tenant_id != caller.id:
                raise Problem(422, "Unknown input", f"Upload '{uri}' does not exist.",
                              "unknown_upload")
            if upload.state != "ready":
                raise Problem(422, "Upload not complete", f"Upload '{uri}' is still in "
                              "progress; complete it first.", "upload_not_complete")

    def accept(request: JobRequest, inputs: list[str], caller: TenantRef,
               idempotency_key: str | None) -> tuple[JobOut, bool]:
        """Validate, record and enqueue a job: all blocking work, in one worker thread."""
        with sessions() as session:
            for uri in inputs:
                check_input(uri, caller, session)
            if request.webhook_url:
                check_url(request.webhook_url, settings.allow_http_urls,
                          frozenset(settings.url_allow_hosts))
            identity = request.options.get("identity")
            if request.kind == "dub" and identity:
                try:
                    get_identity(session, caller.id, identity)
                except IdentityNotFoundError as exc:
                    raise Problem(422, "Unknown identity", str(exc), exc.code) from exc
            try:
                job, created = create_job(session, caller.id, request, idempotency_key,
                                          max_in_flight=settings.max_jobs_in_flight)
            except IdempotencyConflictError as exc:
                raise Problem(409, "Idempotency key reused", "This Idempotency-Key was used "
                              "with a different request.", "idempotency_conflict") from exc
            except TooManyJobsError as exc:
                raise Problem(429, "Too many jobs", f"{exc} Wait for some to finish, or "
                              "cancel some.", "too_many_jobs", {"Retry-After": "30"}) from exc
            if created:
                submitted.inc()
                if executor is not None:
                    executor.submit(job.id)
                elif queue is not None:
                    queue.send_task("lipdub.run_job", args=[job.id])
            return JobOut.of(job), created

    @app.post("/v1/jobs", status_code=201)
    async def submit(body: JobCreate, caller: Caller, response: Response,
                     idempotency_key: Annotated[str | None, Header()] = None) -> JobOut:
        request = JobRequest(body.video, body.audio, body.options.model_dump(),
                             body.webhook_url, body.metadata)
        job, created = await run_in_threadpool(accept, request, [body.video, body.audio],
                                               caller, idempotency_key)
        if not created:
            response.status_code = 200
        return job

    @app.get("/v1/jobs/{job_id}")
    def read(job: OwnedJob) -> JobOut:
        return JobOut.of(job)

    @app.get("/v1/jobs")
    def index(session: Db, caller: Caller, state: JobState | None = None,
              cursor: str | None = None, limit: int = 50) -> JobPage:
        jobs, next_cursor = list_jobs(session, caller.id, state, cursor, min(limit, 200))
        return JobPage(jobs=[JobOut.of(j) for j in jobs], next_cursor=next_cursor)

    @app.post("/v1/jobs/{job_id}/cancel")
    def cancel(job: OwnedJob, session: Db) -> JobOut:
        return JobOut.of(request_cancel(session, job.tenant_id, job.id))

    @app.get("/v1/jobs/{job_id}/result", response_model=None)
    def result(job: OwnedJob) -> Response:
        if job.state is not JobState.SUCCEEDED or not job.result_key:
            raise Problem(409, "No result yet", f"Job '{job.id}' is {job.state}.", "no_result")
        if isinstance(store, LocalStore):
            return FileResponse(store.local_path(job.result_key), media_type="video/mp4",
                                filename=f"{job.id}.mp4")
        return RedirectResponse(store.url(job.result_key), status_code=307)

    @app.get("/v1/jobs/{job_id}/webhooks")
    def deliveries(job: OwnedJob, session: Db) -> list[DeliveryOut]:
        rows = session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id)
                               .order_by(WebhookDelivery.id))
        return [DeliveryOut.model_validate(r, from_attributes=True) for r in rows]

    @app.post("/v1/jobs/{job_id}/webhooks/redeliver")
    def redeliver(job: OwnedJob, session: Db) -> DeliveryOut:
        if not job.webhook_url or not job.state.terminal:
            raise Problem(409, "Nothing to deliver", "The job has no webhook or is not "
                          "finished.", "nothing_to_deliver")
        return DeliveryOut.model_validate(context.notify(session, job),
                                          from_attributes=True)

    @app.post("/v1/identities", status_code=202)
    async def train_identity(body: IdentityCreate, caller: Caller, response: Response,
                             idempotency_key: Annotated[str | None, Header()] = None) -> JobOut:
        """Train (or retrain, as a new version) a person's restorer from their footage. The
        answer is the training job; the identity appears when it succeeds."""
        options = {"name": body.name, "videos": body.videos, "search": body.search,
                   "steps": body.steps}
        request = JobRequest(body.videos[0], "", options, body.webhook_url, body.metadata,
                             kind=TRAIN_KIND)
        job, created = await run_in_threadpool(accept, request, body.videos, caller,
                                               idempotency_key)
        if not created:
            response.status_code = 200
        return job

    def owned_identity(name: str, session: Db, caller: Caller) -> Identity:
        try:
            return get_identity(session, caller.id, name)
        except IdentityNotFoundError as exc:
            raise not_found("identity", name) from exc

    @app.get("/v1/identities")
    def identities(session: Db, caller: Caller) -> list[IdentityOut]:
        return [IdentityOut.of(i) for i in list_identities(session, caller.id)]

    @app.get("/v1/identities/{name}")
    def identity(found: Annotated[Identity, Depends(owned_identity)]) -> IdentityOut:
        return IdentityOut.of(found)

    @app.delete("/v1/identities/{name}", status_code=204)
    def forget_identity(found: Annotated[Identity, Depends(owned_identity)],
                        session: Db) -> Response:
        delete_identity(session, store, found.tenant_id, found.name)
        return Response(status_code=204)

    @app.post("/v1/uploads/direct", status_code=201)
    def start_direct(body: DirectUploadCreate, session: Db, caller: Caller) -> DirectUploadOut:
        """Upload a large file straight to S3: PUT each part (part_bytes each, the last one
        shorter) to its URL, keep each answer's ETag header, then POST them to complete."""
        try:
            direct = start_direct_upload(session, store, caller.id,
                                         _safe_name(body.filename), body.size_bytes,
                                         settings.max_upload_bytes)
        except UploadTooLargeError as exc:
            raise Problem(413, "Upload too large", str(exc), exc.code) from exc
        return DirectUploadOut(id=direct.upload.id, part_bytes=direct.part_bytes,
                               part_urls=direct.part_urls, expires_in_s=direct.expires_s)

    @app.post("/v1/uploads/{upload_id}/complete")
    def complete_direct(upload_id: str, body: DirectUploadComplete, session: Db,
                        caller: Caller) -> UploadOut:
        try:
            row = complete_direct_upload(session, store, caller.id, upload_id, body.etags)
        except UploadNotFoundError as exc:
            raise not_found("upload in progress", upload_id) from exc
        return UploadOut(id=row.id, filename=row.filename, size_bytes=row.size_bytes)

    @app.post("/v1/uploads/{upload_id}/abort", status_code=204)
    def abort_direct(upload_id: str, session: Db, caller: Caller) -> Response:
        try:
            abort_direct_upload(session, store, caller.id, upload_id)
        except UploadNotFoundError as exc:
            raise not_found("upload in progress", upload_id) from exc
        return Response(status_code=204)

    @app.post("/v1/uploads", status_code=201)
    def upload(file: UploadFile, session: Db, caller: Caller,
               content_length: Annotated[int | None, Header()] = None) -> UploadOut:
        limit = settings.max_upload_bytes
        if content_length is not None and content_length > limit + FORM_OVERHEAD_BYTES:
            raise Problem(413, "Upload too large", f"Uploads are limited to {limit} bytes.",
                          "upload_too_large")
        size = file.size if file.size is not None else 0
        if size > limit:
            raise Problem(413, "Upload too large", f"Uploads are limited to {limit} bytes.",
                          "upload_too_large")
        upload_id = new_id()
        key = tenant_key(caller.id, "uploads", upload_id, _safe_name(file.filename))
        size = store.put_stream(key, file.file)
        row = Upload(id=upload_id, tenant_id=caller.id, filename=file.filename or "upload",
                     storage_key=key, size_bytes=size)
        session.add(row)
        session.commit()
        return UploadOut(id=row.id, filename=row.filename, size_bytes=row.size_bytes)

    return app


def _safe_name(name: str | None) -> str:
    keep = "".join(c for c in (name or "upload") if c.isalnum() or c in "._-")
    return keep[-100:] or "upload"
