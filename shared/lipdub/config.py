"""One settings object, read from the environment (prefix LIPDUB_) so that every real
component is switched on by configuration, never by code edits."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from lipdub.qc.thresholds import QCThresholds


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIPDUB_", env_file=None, extra="ignore")

    # Operator-supplied Wav2Lip weights (never bundled); `--engine auto` uses wav2lip when set.
    wav2lip_checkpoint: Path | None = None
    # "auto" picks CUDA when torch sees it, else CPU.
    device: str = "auto"
    wav2lip_batch_size: int = 16
    # How a local CPU runs Wav2Lip: "auto" (bfloat16 where the CPU has it natively, twice
    # float32's speed; else float32), "torch", "torch-bf16", "onnxruntime".
    cpu_runtime: str = "auto"
    # Files made from the operator's models on this machine (the onnxruntime runtime's
    # export of Wav2Lip, made once per checkpoint).
    model_cache_dir: Path = Path.home() / ".lipdub" / "cache"
    # Where the models run: "local" (this process), or a model server holding the weights:
    # "triton://host:8001" (gRPC), "triton+http://host:8000", "ray+http://host:8000".
    inference: str = "local"
    # With a model server: how many identity restorers it keeps loaded (the least recently
    # used is unloaded to make room; a GPU holds a few hundred MB per restorer).
    resident_restorers: int = 8
    # Which model of the server's repository runs Wav2Lip: "wav2lip" (the torch program) or
    # "wav2lip_onnx" (NGC's Triton container: onnxruntime with TensorRT FP16).
    served_wav2lip: str = "wav2lip"
    # Workers serve their Prometheus metrics (inference latency, batch sizes, errors) on
    # this port when set.
    worker_metrics_port: int | None = None
    # Dubs longer than this run in segments of about this length (cut at shots) on any
    # number of workers, then are joined.
    segment_seconds: float = 60.0
    # Detect faces every N frames (and on every scene cut); track in between.
    detect_every: int = 5
    # Where identities (trained restorers) live; one folder per person, versioned.
    identity_dir: Path = Path.home() / ".lipdub" / "identities"
    # Training steps for an identity's restorer (`--restore auto` uses the same).
    restore_steps: int = 2000
    restore_batch_size: int = 8
    # QC after every dub (the CLI's and every job's); off: no qc stage, no report.
    qc_enabled: bool = True
    # When QC flags a shot (JSON, e.g. '{"sync_offset_frames": 2}'); the defaults and the
    # measurements behind them: lipdub.qc.report and benchmarks/RESULTS.md.
    qc_thresholds: QCThresholds = QCThresholds()

    # The job platform. Embedded defaults: SQLite, a local folder, jobs run in-process.
    database_url: str = f"sqlite:///{Path.home() / '.lipdub' / 'lipdub.db'}"
    storage_dir: Path = Path.home() / ".lipdub" / "storage"
    s3_bucket: str | None = None  # set to store objects in S3 (or MinIO) instead
    s3_endpoint_url: str | None = None
    # Where clients reach the store, when not at s3_endpoint_url (presigned URLs carry it).
    s3_public_endpoint_url: str | None = None
    # s3:// inputs: a tenant may name objects under its own prefix in the platform's bucket,
    # and those in buckets granted here: tenant name or id -> ["bucket", "bucket/prefix"].
    s3_input_grants: dict[str, list[str]] = {}
    executor: str = "inprocess"  # or "celery" (needs broker_url)
    broker_url: str = "redis://127.0.0.1:6379/0"
    # A job taken by a worker that dies is handed out again after this long (Redis broker).
    broker_visibility_timeout_s: int = 3600
    # A running job's lease, renewed every third of it while a stage runs; a dead worker's
    # job (or one whose worker lost the database) is claimable again once it runs out.
    job_lease_s: float = 30.0
    # The recovery sweep re-enqueues jobs queued this long without starting (lost messages,
    # e.g. a broker restart) and running jobs whose lease ran out.
    requeue_after_s: float = 300.0
    # How often the maintenance chores run (webhook retries, clean-ups, the sweep above).
    sweep_interval_s: float = 15.0
    # A stage that meets a passing fault (database or object store unavailable) is retried
    # this many times in all, the first retry after this long, doubling; then the job fails.
    fault_retry_attempts: int = 8
    fault_retry_first_s: float = 2.0
    # Object store calls give up (and count as a passing fault) after this long.
    s3_timeout_s: float = 60.0
    # Celery queue per job stage (default: all on "celery"), e.g. {"lip-sync": "gpu"}.
    stage_queues: dict[str, str] = {}
    max_upload_bytes: int = 8 * 1024**3
    max_jobs_in_flight: int = 20  # per tenant; more gets 429
    # Fair share: a tenant's batch items in the workers' queue at once (the rest wait, so
    # other tenants' jobs are not queued behind a large batch).
    batch_slots_per_tenant: int = 2
    # Per job: longer or larger footage fails at once with media_limit_exceeded.
    max_input_seconds: float = 4 * 3600.0
    max_input_width: int = 4096
    max_input_height: int = 2160
    # A verified API key is remembered this long (a revoked key stops working within it).
    auth_cache_s: float = 30.0
    # The SSRF guard for URL inputs and webhooks: https to public addresses only, unless the
    # operator allows http, names hosts to trust, or networks (CIDR) to reach.
    allow_http_urls: bool = False
    url_allow_hosts: list[str] = []
    url_allow_networks: list[str] = []
    # Signs the review console's sessions and forms; default: generated once into
    # ~/.lipdub/console_secret (set one shared secret for several gateways).
    console_secret: str | None = None
    webhook_secret: str | None = None  # default: generated once into ~/.lipdub/webhook_secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
