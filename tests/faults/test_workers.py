"""Workers that die or are told to stop: SIGKILL at a random point of a random stage, again
and again; SIGTERM to a Celery worker and to `lipdub serve` (each finishes or hands back
its stage). Every job must end succeeded exactly once, with one terminal webhook,
and no scratch, half-written file or working artifact left behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.models import JobState
from lipdub.jobs.dubbing import dub_stages
from lipdub.samples.talking import ClipSpec
from lipdub_gateway.app import create_app
from tests.faults.harness import (
    RUNS,
    Scenario,
    Workers,
    check_jobs,
    finished,
    job_row,
    leftovers,
    wait_until,
)
from tests.http_helpers import free_port
from tests.test_platform_api import _Receiver, _upload, embedded_database

REDIS_DB = 12  # a database of the machine's Redis that only these tests use
SECRET = "whsec_ZmF1bHQtc3VpdGUtc2VjcmV0LTEyMzQ="
CLIP = ClipSpec(width=480, height=270, face_height=120, face_centre=(0.5, 0.42))
STAGES = [s.name for s in dub_stages(Settings(), lambda _v, _a: None) if s.name != "identity"]


@pytest.fixture
def platform(tmp_path: Path):
    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    url, _, key = embedded_database(tmp_path)
    env = {"LIPDUB_DATABASE_URL": url, "LIPDUB_STORAGE_DIR": str(tmp_path / "store"),
           "LIPDUB_BROKER_URL": broker, "LIPDUB_EXECUTOR": "celery",
           "LIPDUB_BROKER_VISIBILITY_TIMEOUT_S": "2", "LIPDUB_JOB_LEASE_S": "2",
           "LIPDUB_ALLOW_HTTP_URLS": "true", "LIPDUB_URL_ALLOW_HOSTS": '["127.0.0.1"]',
           "LIPDUB_WEBHOOK_SECRET": SECRET}
    workers = Workers(env, tmp_path / "tmp")
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", broker_url=broker,
                        executor="celery", allow_http_urls=True, url_allow_hosts=["127.0.0.1"],
                        webhook_secret=SECRET)
    try:
        with TestClient(create_app(settings)) as client:
            yield client, {"Authorization": f"Bearer {key}"}, workers, url, tmp_path
    finally:
        workers.stop_all()
        redis.Redis.from_url(broker).flushdb()


def test_worker_sigkilled_at_random_stages(platform, samples, short_voice: Path) -> None:
    client, auth, workers, url, tmp_path = platform
    scenario = Scenario("worker SIGKILL at a random stage")
    receiver = _Receiver(SECRET)
    clip = samples.clip("fault-clip", 1.6, seed=4, spec=CLIP)
    video, audio = _upload(client, auth, clip), _upload(client, auth, short_voice)
    rng = random.Random(20261125)
    worker = workers.start()
    ids, killed_in = [], []
    for _ in range(RUNS):
        job_id = scenario.count(client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "options": {"engine": "warp"},
            "webhook_url": receiver.url})).json()["id"]
        ids.append(job_id)
        stage = rng.randrange(len(STAGES))  # die while this stage runs

        def reached(job_id: str = job_id, stage: int = stage) -> bool:
            job = job_row(url, job_id)
            return job.state.terminal or (job.state is JobState.RUNNING and len(
                (job.work or {}).get("done", [])) >= stage and job.lease_until is not None)

        wait_until(reached, 120, f"job {job_id} to reach {STAGES[stage]}", every=0.01)
        time.sleep(rng.uniform(0, 0.4))
        killed_in.append(job_row(url, job_id).stage)
        workers.signal(worker, signal.SIGKILL, scenario)
        worker.wait(10)
        scenario.runs += 1
        worker = workers.start()
    for job_id in ids:
        wait_until(lambda j=job_id: finished(url, j), 180, f"job {job_id} to finish", 0.2)
    wait_until(lambda: len(receiver.received) >= len(ids), 30, "the webhooks")
    time.sleep(1)  # a duplicate would arrive now
    check_jobs(scenario, url, ids, receiver.received)
    scenario.notes.append(f"killed in: {', '.join(str(s) for s in killed_in)}")
    left = leftovers(workers.tmp, tmp_path / "store")
    workers.stop_all(scenario)
    scenario.save()
    receiver.server.shutdown()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
    assert scenario.server_errors == 0
    assert left == [], left


def test_sigterm_makes_a_celery_worker_hand_back_its_stage(platform, samples,
                                                       short_voice: Path) -> None:
    client, auth, workers, url, tmp_path = platform
    scenario = Scenario("worker SIGTERM mid-stage")
    clip = samples.clip("fault-long", 6.0, seed=5, spec=CLIP)
    video, audio = _upload(client, auth, clip), _upload(client, auth, short_voice)
    ids, finished_first = [], 0
    for _ in range(max(1, RUNS // 2)):
        worker = workers.start()
        job_id = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio,
            "options": {"engine": "warp", "sync_mode": "silence"}}).json()["id"]
        ids.append(job_id)
        def in_faces(job_id: str = job_id) -> bool:  # claimed by the worker, not queued
            job = job_row(url, job_id)
            return job.stage == "faces" and job.lease_until is not None

        wait_until(in_faces, 120, "the faces stage to run", every=0.01)
        workers.signal(worker, signal.SIGTERM, scenario)
        assert worker.wait(60) == 0
        job = job_row(url, job_id)
        # The stage stops at its next progress write and the job is handed back (or the
        # stage had just finished): either way the job goes on, it does not fail.
        assert job.state is JobState.RUNNING and job.error_code is None, job.error_message
        handed_back = any("handed back" in (e.message or "") for e in job.events)
        assert handed_back or "faces" in job.work["done"]
        finished_first += not handed_back
        scenario.runs += 1
    scenario.notes.append(f"stage finished before exit {finished_first}x, handed back "
                          f"{len(ids) - finished_first}x")
    workers.start()
    for job_id in ids:
        wait_until(lambda j=job_id: finished(url, j), 180, f"job {job_id} to finish", 0.2)
    check_jobs(scenario, url, ids)
    workers.stop_all(scenario)
    scenario.save()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario


def test_sigterm_to_lipdub_serve_hands_the_job_back(tmp_path: Path, samples,
                                                    short_voice: Path) -> None:
    """The embedded platform stops within seconds of SIGTERM, its running job released (not
    failed); started again, it finishes the job, the interrupted stage run once more."""
    scenario = Scenario("lipdub serve SIGTERM mid-job")
    url, _, key = embedded_database(tmp_path)
    env = {**os.environ, "LIPDUB_DATABASE_URL": url,
           "LIPDUB_STORAGE_DIR": str(tmp_path / "store")}
    env.pop("LIPDUB_EXECUTOR", None)
    auth = {"Authorization": f"Bearer {key}"}
    clip = samples.clip("fault-long", 6.0, seed=5, spec=CLIP)
    ids, stops = [], []

    def serve() -> tuple[subprocess.Popen, str]:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "lipdub.cli", "serve", "--port",
                                    str(port)], env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 60, "lipdub serve to start", every=0.2)
        return process, base

    for _ in range(max(1, RUNS // 2)):
        process, base = serve()
        with httpx.Client(base_url=base, headers=auth, timeout=30) as http:
            files = [http.post("/v1/uploads", files={"file": (p.name, p.read_bytes())})
                     for p in (clip, short_voice)]
            video, audio = (scenario.count(f).json()["id"] for f in files)
            job_id = scenario.count(http.post("/v1/jobs", json={
                "video": video, "audio": audio,
                "options": {"engine": "warp", "sync_mode": "silence"}})).json()["id"]
        ids.append(job_id)
        wait_until(lambda j=job_id: job_row(url, j).stage in ("lip-sync", "encode"), 120,
                   "the render", every=0.02)
        scenario.watch(process.pid)
        process.send_signal(signal.SIGTERM)
        started = time.time()
        # uvicorn shuts down gracefully, then re-raises the signal for the exit status.
        assert process.wait(30) in (0, -signal.SIGTERM)
        stopped_in = time.time() - started
        job = job_row(url, job_id)
        assert job.state is JobState.RUNNING and job.lease_until is None, job.state
        stops.append(stopped_in)
        scenario.runs += 1
    scenario.notes.append(f"stopped {min(stops):.1f}-{max(stops):.1f} s after SIGTERM")
    process, base = serve()
    for job_id in ids:
        wait_until(lambda j=job_id: finished(url, j), 180, f"job {job_id} to finish", 0.2)
    check_jobs(scenario, url, ids)
    scenario.watch(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    scenario.save()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
