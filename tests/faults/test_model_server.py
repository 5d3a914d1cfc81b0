"""The model server failing under running jobs: a Triton server SIGKILLed while a job's
lip-sync stage sends it batches. Restarted, the job resumes and succeeds (the stage was
released with the reason in its events and retried); not restarted, the job fails with the
specific code inference_unavailable once the retries are spent. A real Celery worker, a real
Triton server (the bundled binary), the embedded database."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lipdub.config import Settings
from lipdub.inference.contract import WAV2LIP
from lipdub.inference.errors import InferenceUnavailableError
from lipdub_gateway.app import create_app
from lipdub_model_server.triton_server import TritonServer
from tests.faults.harness import (
    Scenario,
    Workers,
    check_jobs,
    finished,
    job_row,
    wait_until,
)
from tests.faults.test_components import CLIP, _env
from tests.http_helpers import free_port
from tests.test_platform_api import _upload, embedded_database

SHM = Path("/dev/shm")


def _kill(server: TritonServer) -> None:
    """SIGKILL the server and its python backend stubs (one process group)."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(10)


def _sample(metrics: str, name: str, labels: dict[str, str]) -> float:
    """A sample's value in Prometheus' text format (0 where absent)."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def _shm_regions() -> set[Path]:
    return set(SHM.glob("triton_python_backend_shm_region_*")) if SHM.is_dir() else set()


def test_model_server_killed_mid_job(tmp_path: Path, samples, short_voice: Path,
                                     exported_repository) -> None:  # noqa: ANN001
    scenario = Scenario("Model server killed mid-job")
    repository, _ = exported_repository
    shm_before = _shm_regions()
    server = TritonServer(repository, http_port=free_port(), grpc_port=free_port(),
                          metrics_port=free_port(), load=[WAV2LIP.name])
    server.start(log=tmp_path / "triton.log")
    url, _, key = embedded_database(tmp_path)
    broker = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(broker).flushdb()
    # Stage retries spanning ~30 s: long enough for a restart, short for a server gone.
    common = {"database_url": url, "storage_dir": tmp_path / "store", "broker_url": broker,
              "executor": "celery", "inference": f"triton://{server.grpc_url}",
              "fault_retry_attempts": 5, "fault_retry_first_s": 1, "job_lease_s": 2,
              "worker_metrics_port": free_port()}
    workers = Workers(_env(common), tmp_path / "tmp")
    auth = {"Authorization": f"Bearer {key}"}
    try:
        with TestClient(create_app(Settings(**common))) as client:
            clip = samples.clip("fault-long", 6.0, seed=5, spec=CLIP)
            video, audio = _upload(client, auth, clip), _upload(client, auth, short_voice)
            workers.start()

            def submit() -> str:
                job_id = client.post("/v1/jobs", headers=auth, json={
                    "video": video, "audio": audio,
                    "options": {"engine": "wav2lip", "sync_mode": "silence"}}).json()["id"]
                wait_until(lambda: job_row(url, job_id).stage == "lip-sync", 120,
                           "the lip-sync stage", every=0.02)
                return job_id

            # Killed, and back a few seconds later: the job resumes.
            resumed = submit()
            _kill(server)
            time.sleep(2)
            server.start(log=tmp_path / "triton.log")
            wait_until(lambda: finished(url, resumed), 240, "the resumed job")
            check_jobs(scenario, url, [resumed])
            events = [e.message or "" for e in job_row(url, resumed).events]
            assert any(InferenceUnavailableError.code.replace("_", " ") in m
                       for m in events), events
            scenario.runs += 1
            # The worker's inference metrics saw the requests and the outage.
            metrics = httpx.get(f"http://127.0.0.1:{common['worker_metrics_port']}/metrics",
                                timeout=5).text
            labels = {"backend": "triton-grpc", "model": WAV2LIP.name}
            assert _sample(metrics, "lipdub_inference_seconds_count", labels) > 0
            assert _sample(metrics, "lipdub_inference_batch_size_sum", labels) >= 16
            assert _sample(metrics, "lipdub_inference_errors_total",
                           {**labels, "kind": "unavailable"}) >= 1

            # Killed for good: the job fails with the specific code after its retries.
            failed = submit()
            _kill(server)
            wait_until(lambda: finished(url, failed), 240, "the job to give up")
            job = job_row(url, failed)
            assert job.state.value == "failed", job.state
            assert job.error_code == InferenceUnavailableError.code
            assert "model server" in (job.error_message or "").lower()
            scenario.jobs += 1
            scenario.runs += 1
    finally:
        workers.stop_all(scenario)
        server.stop()
        for region in _shm_regions() - shm_before:  # what the killed stubs left behind
            region.unlink(missing_ok=True)
        scenario.save()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
