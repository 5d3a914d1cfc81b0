"""The platform's real components failing under it: PostgreSQL dropping connections, Redis
restarted and unreachable while jobs arrive, the object store answering 500s and then not
answering at all, the database's and the store's disks full. For each: what the job and the
API do (retry, wait, or fail with a specific code), that nothing is lost, and that /readyz
says what is unavailable."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx
import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.models import JobState
from lipdub.db.session import session_factory, upgrade
from lipdub.jobs.keys import create_key
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
    peak_rss_mib,
    reset_peak_rss,
    wait_until,
)
from tests.faults.proxy import ERROR, HANG, PASS, FaultProxy
from tests.http_helpers import free_port
from tests.live_gateway import live_gateway
from tests.test_platform_api import (
    _drop_postgres,
    _postgres_url,
    _Receiver,
    _upload,
    embedded_database,
)
from tests.test_platform_celery import _redis_server

CLIP = ClipSpec(width=480, height=270, face_height=120, face_centre=(0.5, 0.42))
# Retries that start fast, and a short lease: a job whose release could not be written
# (its database was the fault) is claimable again soon.
FAST_RETRIES = {"fault_retry_attempts": 20, "fault_retry_first_s": 0.3, "job_lease_s": 2}


def _env(settings: dict) -> dict[str, str]:
    return {f"LIPDUB_{k.upper()}": str(v) for k, v in settings.items()}


def test_postgres_connections_dropped_mid_job(tmp_path: Path, samples,
                                              short_voice: Path) -> None:
    scenario = Scenario("PostgreSQL connections terminated mid-job")
    url = _postgres_url()
    upgrade(url)
    with session_factory(url)() as session:
        _, key = create_key(session, "studio")
    broker = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(broker).flushdb()
    common = {"database_url": url, "storage_dir": tmp_path / "store", "broker_url": broker,
              "executor": "celery", **FAST_RETRIES}
    workers = Workers(_env(common), tmp_path / "tmp")
    auth = {"Authorization": f"Bearer {key}"}
    name = url.rsplit("/", 1)[1]
    drops: list[int] = []
    try:
        with TestClient(create_app(Settings(**common))) as client:
            clip = samples.clip("fault-long", 6.0, seed=5, spec=CLIP)
            video, audio = _upload(client, auth, clip), _upload(client, auth, short_voice)
            worker = workers.start()
            ids = []
            for _ in range(max(1, RUNS // 2)):
                job_id = client.post("/v1/jobs", headers=auth, json={
                    "video": video, "audio": audio, "options": {
                        "engine": "warp", "sync_mode": "silence"}}).json()["id"]
                ids.append(job_id)
                wait_until(lambda j=job_id: job_row(url, j).stage in ("faces", "lip-sync"),
                           120, "the job to be well under way", every=0.02)
                for _ in range(3):  # every connection but ours, three times over
                    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                                         autocommit=True) as admin:
                        dropped = admin.execute(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()",
                            (name,)).fetchone()[0]
                    drops.append(dropped)
                    scenario.count(client.get(f"/v1/jobs/{job_id}", headers=auth))
                    time.sleep(0.7)
                scenario.runs += 1
            for job_id in ids:
                wait_until(lambda j=job_id: finished(url, j), 240, "the jobs to finish", 0.2)
                scenario.count(client.get(f"/v1/jobs/{job_id}", headers=auth))
            check_jobs(scenario, url, ids)
            scenario.watch(worker.pid)
    finally:
        workers.stop_all()
        scenario.notes.append(f"{len(drops)} drops of {min(drops, default=0)}-"
                              f"{max(drops, default=0)} connections each")
        scenario.save()
        _drop_postgres(url)
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
    assert scenario.server_errors == 0, scenario


def test_redis_restarted_and_unreachable_under_load(tmp_path: Path, samples,
                                                    short_voice: Path) -> None:
    """Jobs keep arriving while the broker is down and comes back empty: every one is
    accepted (201, never 5xx), /readyz says the broker is unavailable meanwhile, and the
    recovery sweep enqueues what the broker lost, so every job runs once."""
    scenario = Scenario("Redis restarted under load")
    outages = max(2, RUNS // 2)
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    server = _redis_server(port, tmp_path)
    url, _, key = embedded_database(tmp_path)
    common = {"database_url": url, "storage_dir": tmp_path / "store", "broker_url": broker,
              "executor": "celery", "sweep_interval_s": 1, "requeue_after_s": 2}
    workers = Workers(_env(common), tmp_path / "tmp", beat=True)
    auth = {"Authorization": f"Bearer {key}"}
    ids: list[str] = []
    readiness: list[int] = []
    try:
        with TestClient(create_app(Settings(**common))) as client:
            clip = samples.clip("fault-clip", 1.6, seed=4, spec=CLIP)
            video, audio = _upload(client, auth, clip), _upload(client, auth, short_voice)
            worker = workers.start()
            stop = threading.Event()

            def submit() -> None:
                while not stop.is_set():
                    r = scenario.count(client.post("/v1/jobs", headers=auth, json={
                        "video": video, "audio": audio, "options": {"engine": "warp"}}))
                    assert r.status_code == 201, r.text
                    ids.append(r.json()["id"])
                    while_down.append(down.is_set())
                    time.sleep(0.8)

            down, while_down = threading.Event(), []
            load = threading.Thread(target=submit)
            load.start()
            for _ in range(outages):
                time.sleep(1.0)
                server.kill()  # the queue in memory goes with it
                server.wait(10)
                down.set()
                time.sleep(1.5)  # unreachable for a while
                readiness.append(client.get("/readyz").status_code)
                server = _redis_server(port, tmp_path)
                down.clear()
                scenario.runs += 1
            time.sleep(1.0)
            stop.set()
            load.join(30)
            assert client.get("/readyz").status_code == 200
            for job_id in ids:
                wait_until(lambda j=job_id: finished(url, j), 300, "the jobs to finish", 0.2)
            check_jobs(scenario, url, ids)
            scenario.notes.append(f"{sum(while_down)} of {len(ids)} jobs submitted while "
                                  f"the broker was down; beat restarted "
                                  f"{workers.beat_restarts}x")
            scenario.watch(worker.pid)
    finally:
        workers.stop_all()
        server.kill()
        server.wait(10)
        scenario.save()
    assert readiness == [503] * outages, readiness
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
    assert scenario.server_errors == 0


@pytest.fixture
def s3_behind_a_proxy(s3: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(s3)
    yield proxy
    proxy.close()


def test_object_store_answering_500s_then_timing_out(tmp_path: Path, samples,
                                                     short_voice: Path,
                                                     s3_behind_a_proxy: FaultProxy) -> None:
    scenario = Scenario("object store 500s, then timeouts")
    reset_peak_rss(os.getpid())
    proxy = s3_behind_a_proxy
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "unused", s3_bucket="dubs",
                        s3_endpoint_url=proxy.url, s3_timeout_s=1, sweep_interval_s=0.5,
                        **FAST_RETRIES)
    auth = {"Authorization": f"Bearer {key}"}
    clip = samples.clip("fault-long", 6.0, seed=5, spec=CLIP)
    ids, during = [], []
    with live_gateway(settings, run_jobs=True) as base, \
            httpx.Client(base_url=base, headers=auth, timeout=60) as http:
        for _ in range(max(1, RUNS // 2)):
            files = [scenario.count(http.post("/v1/uploads", files={
                "file": (p.name, p.read_bytes())})) for p in (clip, short_voice)]
            video, audio = (f.json()["id"] for f in files)
            job_id = scenario.count(http.post("/v1/jobs", json={
                "video": video, "audio": audio,
                "options": {"engine": "warp", "sync_mode": "silence"}})).json()["id"]
            ids.append(job_id)
            wait_until(lambda j=job_id: job_row(url, j).stage in ("faces", "lip-sync"), 120,
                       "the job to be under way", every=0.02)
            for mode in (ERROR, HANG):
                proxy.mode = mode
                started = time.time()
                while time.time() - started < 4:
                    upload = http.post("/v1/uploads", files={"file": ("x.wav", b"x")})
                    during.append((mode, upload.status_code,
                                   http.get("/readyz").status_code))
                proxy.mode = PASS
            scenario.runs += 1
        for job_id in ids:
            wait_until(lambda j=job_id: finished(url, j), 240, "the jobs to finish", 0.2)
        check_jobs(scenario, url, ids)
        scenario.max_rss_mib = peak_rss_mib(os.getpid())
        keys = [o["Key"] for o in boto3.client("s3", endpoint_url=proxy.url).list_objects_v2(
            Bucket="dubs").get("Contents", [])]
    scenario.notes.append(f"{proxy.faults} requests answered with a fault; "
                          "max RSS is the test process's (gateway and jobs in it)")
    scenario.save()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
    assert all(up == 503 and ready == 503 for _, up, ready in during), during
    assert scenario.server_errors == 0
    assert not [k for k in keys if "/work/" in k or k.startswith("_readiness")], keys


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` (tmpfs), so that full means ENOSPC from the kernel."""
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Take every free byte of `disk`; removing the file frees them again."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: the failing write is ours
        try:
            while True:
                out.write(b"\0" * (1 << 16))
        except OSError:
            pass
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI has it)")
def test_database_and_store_out_of_space(tmp_path: Path, samples, short_voice: Path) -> None:
    """Both disks fill while a job runs: the job waits (retried), uploads answer 503 and
    /readyz names both; space comes back and the job finishes, once. With the store full
    for longer than the retries last, the job fails as storage_unavailable, and what it
    left is removed once the store takes deletes again."""
    scenario = Scenario("database and store disks full")
    reset_peak_rss(os.getpid())
    with small_disk(tmp_path / "dbdisk", "24m") as db_disk, \
            small_disk(tmp_path / "storedisk", "24m") as store_disk:
        url = f"sqlite:///{db_disk / 'lipdub.db'}"
        upgrade(url)
        with session_factory(url)() as session:
            _, key = create_key(session, "studio")
        auth = {"Authorization": f"Bearer {key}"}
        settings = Settings(database_url=url, storage_dir=store_disk / "store",
                            sweep_interval_s=0.5, **FAST_RETRIES)
        clip = samples.clip("fault-long", 6.0, seed=5, spec=CLIP)
        with live_gateway(settings, run_jobs=True) as base, \
                httpx.Client(base_url=base, headers=auth, timeout=60) as http:
            video, audio = (scenario.count(http.post("/v1/uploads", files={
                "file": (p.name, p.read_bytes())})).json()["id"] for p in (clip, short_voice))
            ids = []
            for _ in range(max(1, RUNS // 2)):
                job_id = scenario.count(http.post("/v1/jobs", json={
                    "video": video, "audio": audio,
                    "options": {"engine": "warp", "sync_mode": "silence"}})).json()["id"]
                ids.append(job_id)
                wait_until(lambda j=job_id: job_row(url, j).stage in ("faces", "lip-sync"),
                           120, "the job to be under way", every=0.02)
                fillers = [fill(db_disk), fill(store_disk)]
                ready = http.get("/readyz")
                upload = http.post("/v1/uploads", files={"file": ("x.wav", b"x" * 100_000)})
                time.sleep(3)
                assert job_row(url, job_id).state is not JobState.FAILED
                for filler in fillers:
                    filler.unlink()
                assert ready.status_code == 503, ready.text
                assert "database unavailable" in ready.json()["detail"]
                assert "storage unavailable" in ready.json()["detail"]
                assert upload.status_code == 503, upload.text
                scenario.runs += 1
            for job_id in ids:
                wait_until(lambda j=job_id: finished(url, j), 240, "the jobs to finish", 0.2)
            check_jobs(scenario, url, ids)
            assert http.get("/readyz").status_code == 200

        # The store stays full past the last retry: the job fails with the fault's code.
        quick = Settings(database_url=url, storage_dir=store_disk / "store",
                         sweep_interval_s=0.5, fault_retry_attempts=3,
                         fault_retry_first_s=0.2)
        with live_gateway(quick, run_jobs=True) as base, \
                httpx.Client(base_url=base, headers=auth, timeout=60) as http:
            job_id = http.post("/v1/jobs", json={
                "video": video, "audio": audio, "options": {"engine": "warp"}}).json()["id"]
            wait_until(lambda: job_row(url, job_id).stage in ("faces", "lip-sync"), 120,
                       "the job to be under way", every=0.01)
            filler = fill(store_disk)
            wait_until(lambda: finished(url, job_id), 120, "the job to give up", 0.2)
            job = job_row(url, job_id)
            assert (job.state, job.error_code) == (JobState.FAILED, "storage_unavailable")
            assert "Resubmit" in job.error_message
            filler.unlink()
            wait_until(lambda: not job_row(url, job_id).cleanup_pending, 30,
                       "the clean-up to be retried", 0.2)
        scenario.max_rss_mib = peak_rss_mib(os.getpid())
        left = leftovers(tmp_path / "none", store_disk / "store")
    scenario.notes.append("max RSS is the test process's (gateway and jobs in it)")
    scenario.save()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
    assert scenario.server_errors == 0
    assert left == [], left


def test_webhook_retries_run_under_the_embedded_default(tmp_path: Path, talking_clip: Path,
                                                        short_voice: Path) -> None:
    """`lipdub serve` has no Celery beat: its own maintenance thread retries deliveries."""
    secret = "whsec_ZW1iZWRkZWQtcmV0cmllcy0wMTIz"
    receiver = _Receiver(secret, fail_first=1)
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", sweep_interval_s=0.5,
                        webhook_secret=secret, allow_http_urls=True,
                        url_allow_hosts=["127.0.0.1"])
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
        job_id = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "options": {"engine": "warp"},
            "webhook_url": receiver.url}).json()["id"]
        wait_until(lambda: len(receiver.received) == 1, 90, "the retried webhook", 0.2)
        log = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()
    receiver.server.shutdown()
    assert [(d["attempt"], d["status_code"]) for d in log] == [(1, 500), (2, 204)], log
    assert receiver.received[0][0] == f"msg_{job_id}_succeeded"


def test_cancel_ends_a_job_no_worker_holds(tmp_path: Path) -> None:
    """A job whose worker died (its lease ran out) is canceled at once, not flagged for a
    worker that will never look, and stops counting against the in-flight limit."""
    from lipdub.jobs.service import JobRequest, claim, create_job

    url, tenant_id, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", max_jobs_in_flight=1,
                        s3_input_grants={"studio": ["footage"]})
    with session_factory(url)() as session:
        job, _ = create_job(session, tenant_id, JobRequest("s3://footage/a.mp4",
                                                           "s3://footage/a.wav", {}))
        assert claim(session, job.id, lease_s=0.1) is not None  # a worker takes it, and dies
    time.sleep(0.2)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"video": "s3://footage/b.mp4", "audio": "s3://footage/b.wav"}
    with TestClient(create_app(settings, run_jobs=False)) as client:
        assert client.post("/v1/jobs", headers=auth, json=body).status_code == 429
        canceled = client.post(f"/v1/jobs/{job.id}/cancel", headers=auth).json()
        assert canceled["state"] == "canceled", canceled
        assert client.post("/v1/jobs", headers=auth, json=body).status_code == 201
