"""The production path: gateway enqueues on the real Redis, a real Celery worker process
runs the job, state and result land in the database and the store."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub_gateway.app import create_app
from tests.http_helpers import free_port
from tests.media_helpers import inspect_output
from tests.test_platform_api import _upload, _wait, embedded_database

REDIS_DB = 13  # a database of the machine's Redis that only these tests use
SECRET = "whsec_" + base64.b64encode(b"celery-test-secret-0123").decode()


@pytest.fixture
def celery_platform(tmp_path: Path):
    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    url, _, key = embedded_database(tmp_path)
    env = {**os.environ, "LIPDUB_DATABASE_URL": url, "LIPDUB_STORAGE_DIR": str(tmp_path / "s"),
           "LIPDUB_BROKER_URL": broker, "LIPDUB_EXECUTOR": "celery",
           "LIPDUB_BROKER_VISIBILITY_TIMEOUT_S": "3", "LIPDUB_JOB_LEASE_S": "3",
           "LIPDUB_ALLOW_HTTP_URLS": "true",
           "LIPDUB_URL_ALLOW_HOSTS": '["127.0.0.1"]', "LIPDUB_WEBHOOK_SECRET": SECRET,
           "LIPDUB_QC_ENABLED": "true"}
    workers: list[subprocess.Popen] = []

    def start_worker() -> subprocess.Popen:
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "worker",
             "--pool", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        return workers[-1]

    start_worker()
    settings = Settings(database_url=url, storage_dir=tmp_path / "s", broker_url=broker,
                        executor="celery", allow_http_urls=True, url_allow_hosts=["127.0.0.1"],
                        webhook_secret=SECRET, qc_enabled=True)
    try:
        with TestClient(create_app(settings)) as client:
            yield client, {"Authorization": f"Bearer {key}"}, start_worker, workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
        redis.Redis.from_url(broker).flushdb()


def test_job_runs_on_a_celery_worker(celery_platform, talking_clip: Path,
                                     short_voice: Path, tmp_path: Path) -> None:
    client, auth, _, workers = celery_platform
    store = tmp_path / "s"
    video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
    started = time.time()
    job_id = client.post("/v1/jobs", headers=auth, json={
        "video": video, "audio": audio, "options": {"engine": "warp"}}).json()["id"]
    job = _wait(client, auth, job_id, timeout=180)
    assert job["state"] == "succeeded", (job, workers[0].poll())
    # One task each.
    assert job["stages_done"] == ["probe", "faces", "lip-sync", "encode", "qc", "publish"]
    assert client.get(f"/v1/jobs/{job_id}/result", headers=auth).status_code == 200
    # The stages' working artifacts are gone; the result stays.
    stored = [str(p) for p in store.rglob("*") if p.is_file()]
    assert not any("/work/" in p for p in stored) and any("/results/" in p for p in stored)
    assert time.time() - started < 180


def test_worker_killed_mid_job_completes_once_after_restart(
    celery_platform, samples, short_voice: Path,
) -> None:
    from tests.test_platform_api import _Receiver

    client, auth, start_worker, workers = celery_platform
    receiver = _Receiver(SECRET)
    long_clip = samples.clip("long-talking", 10.0, seed=6)
    video, audio = _upload(client, auth, long_clip), _upload(client, auth, short_voice)
    job_id = client.post("/v1/jobs", headers=auth, json={
        "video": video, "audio": audio, "options": {"engine": "warp", "sync_mode": "silence"},
        "webhook_url": receiver.url}).json()["id"]
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until the worker is well into the dub
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["state"] == "running" and job["progress"] >= 20:
            break
        time.sleep(0.1)
    assert job["state"] == "running", job
    os.killpg(workers[0].pid, signal.SIGKILL)  # no chance to clean up or ack
    workers[0].wait(10)
    time.sleep(4)  # past the visibility timeout: the broker hands the job out again
    start_worker()
    job = _wait(client, auth, job_id, timeout=240)
    assert job["state"] == "succeeded", job
    states = [e["state"] for e in job["events"]]
    messages = [e["message"] for e in job["events"]]
    # Started once, finished once. The kill lands inside a stage (the next worker resumes
    # it: one more 'running' event) or, on a busy machine, between two stages (the next
    # worker simply takes the next one).
    assert states.count("succeeded") == 1 and messages.count("started") == 1, states
    assert states.count("running") in (1, 2), states
    deadline = time.time() + 10
    while not receiver.received and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    ids = [message_id for message_id, _ in receiver.received]
    assert ids == [f"msg_{job_id}_succeeded"]  # one terminal webhook, no duplicate
    receiver.server.shutdown()


def _redis_server(port: int, folder: Path) -> subprocess.Popen:
    """Our own Redis server process (keeping nothing on disk), so we may restart it."""
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", str(folder)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def test_redis_restart_with_queued_jobs_loses_none(tmp_path: Path, talking_clip: Path,
                                                   short_voice: Path) -> None:
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    server = _redis_server(port, tmp_path)
    url, _, key = embedded_database(tmp_path)
    auth = {"Authorization": f"Bearer {key}"}
    settings = Settings(database_url=url, storage_dir=tmp_path / "s", broker_url=broker,
                        executor="celery")
    worker = None
    try:
        with TestClient(create_app(settings)) as client:
            video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
            ids = [client.post("/v1/jobs", headers=auth, json={
                "video": video, "audio": audio, "options": {"engine": "warp"}}).json()["id"]
                for _ in range(3)]
            assert redis.Redis(port=port).llen("celery") == 3  # waiting in the broker
            server.kill()  # the broker goes down with the queue in memory...
            server.wait(10)
            server = _redis_server(port, tmp_path)  # ...and comes back empty
            assert redis.Redis(port=port).llen("celery") == 0
            env = {**os.environ, "LIPDUB_DATABASE_URL": url,
                   "LIPDUB_STORAGE_DIR": str(tmp_path / "s"), "LIPDUB_BROKER_URL": broker,
                   "LIPDUB_SWEEP_INTERVAL_S": "2", "LIPDUB_REQUEUE_AFTER_S": "1"}
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "worker", "-B",
                 "-s", str(tmp_path / "beat-schedule"), "--pool", "solo", "--loglevel",
                 "WARNING", "--without-gossip", "--without-mingle"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            for job_id in ids:
                job = _wait(client, auth, job_id, timeout=240)
                assert job["state"] == "succeeded", job
                assert [e["state"] for e in job["events"]].count("succeeded") == 1
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        server.kill()
        server.wait(10)


def test_production_stack_end_to_end(tmp_path: Path, samples, short_voice: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every real component at once: PostgreSQL, Redis + a Celery worker running the stage
    chain, an S3 server process, and a local receiver verifying the signed webhook. The video
    is a direct (presigned multipart) upload; the result comes back as a presigned URL."""
    import boto3
    import httpx
    from moto.server import ThreadedMotoServer

    from lipdub.db.session import session_factory, upgrade
    from lipdub.jobs.keys import create_key
    from tests.test_platform_api import _drop_postgres, _postgres_url, _Receiver
    from tests.test_storage_s3 import _put_parts

    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    s3_port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port)
    s3.start()
    endpoint = f"http://127.0.0.1:{s3_port}"
    aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="films")
    url = _postgres_url()
    upgrade(url)
    with session_factory(url)() as session:
        _, key = create_key(session, "studio")
    receiver = _Receiver(SECRET)
    common = {"database_url": url, "broker_url": broker, "executor": "celery",
              "s3_bucket": "films", "s3_endpoint_url": endpoint, "webhook_secret": SECRET,
              "allow_http_urls": True, "url_allow_hosts": ["127.0.0.1"],
              "s3_input_grants": {"studio": ["films/incoming"]}, "qc_enabled": True}
    env = {**os.environ, **{f"LIPDUB_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
                            for k, v in common.items()}}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "worker", "--pool",
         "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        settings = Settings(storage_dir=tmp_path / "unused", **common)
        with TestClient(create_app(settings)) as client:
            assert client.get("/readyz").status_code == 200
            clip = samples.clip("talking", 4.0, seed=1).read_bytes()
            direct = client.post("/v1/uploads/direct", headers=auth, json={
                "filename": "reel.mp4", "size_bytes": len(clip)}).json()
            client.post(f"/v1/uploads/{direct['id']}/complete", headers=auth,
                        json={"etags": _put_parts(direct, clip)})
            # The new voice is already in S3, where the operator granted the studio a prefix.
            boto3.client("s3", endpoint_url=endpoint).upload_file(
                str(short_voice), "films", "incoming/voice-fr.wav")
            job_id = client.post("/v1/jobs", headers=auth, json={
                "video": direct["id"], "audio": "s3://films/incoming/voice-fr.wav",
                "options": {"engine": "warp"}, "webhook_url": receiver.url}).json()["id"]
            job = _wait(client, auth, job_id, timeout=240)
            assert job["state"] == "succeeded", (job, worker.poll())
            assert job["stages_done"] == ["probe", "faces", "lip-sync", "encode", "qc", "publish"]
            result = client.get(f"/v1/jobs/{job_id}/result", headers=auth,
                                follow_redirects=False)
            assert result.status_code == 307
            out = tmp_path / "out.mp4"
            out.write_bytes(httpx.get(result.headers["location"]).content)
            assert abs(inspect_output(out).video_seconds - 2.5) < 0.1
            deadline = time.time() + 30
            while not receiver.received and time.time() < deadline:
                time.sleep(0.1)
            assert [m for m, _ in receiver.received] == [f"msg_{job_id}_succeeded"]
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        receiver.server.shutdown()
        s3.stop()
        _drop_postgres(url)
        redis.Redis.from_url(broker).flushdb()
