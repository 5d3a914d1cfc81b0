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
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.models import JobPart, JobState, PartState
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


def _freeze_a_worker_mid_segment(parts: Callable[[], list[JobPart]], candidates: tuple[
        subprocess.Popen, ...]) -> tuple[subprocess.Popen, JobPart]:
    """Stop (SIGSTOP) a worker that holds a segment in flight, with another segment done,
    and return it with that segment. A segment can finish between reading the records and
    signalling its worker (a segment renders in well under a second here), so the worker is
    frozen first and the records read again: the kill then lands on a segment still held."""
    while True:
        wait_until(lambda: any(p.state is PartState.DONE for p in parts()) and any(
            p.state is PartState.RUNNING and p.frames_done > 0 for p in parts()), 180,
            "segments under way", every=0.02)
        held = next((p for p in parts() if p.state is PartState.RUNNING), None)
        if held is None:
            continue
        worker = next(w for w in candidates if held.worker.endswith(f":{w.pid}"))
        os.killpg(worker.pid, signal.SIGSTOP)
        victim = next((p for p in parts() if p.state is PartState.RUNNING
                       and p.worker == held.worker), None)
        if victim is not None:
            return worker, victim
        os.killpg(worker.pid, signal.SIGCONT)  # it finished first: try the next segment


def test_a_film_in_segments_on_two_workers_survives_one_killed(tmp_path: Path) -> None:
    """A segmented job shared by two worker processes; one is SIGKILLed while it renders a
    segment. Only that segment runs again (the job's segment records say so), the result is
    complete, and exactly one terminal webhook is sent."""
    from sqlalchemy import select

    from lipdub.db.session import session_factory
    from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
    from lipdub.samples.talking import Shot, write_multishot_clip
    from tests.media_helpers import inspect_output

    scenario = Scenario("worker SIGKILL mid-segment (2 workers)")
    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    url, _, key = embedded_database(tmp_path)
    common = {"database_url": url, "storage_dir": str(tmp_path / "store"),
              "broker_url": broker, "executor": "celery", "broker_visibility_timeout_s": 2,
              "job_lease_s": 2, "webhook_secret": SECRET, "segment_seconds": 1.2,
              "sweep_interval_s": 1, "requeue_after_s": 3, "allow_http_urls": True}
    workers = Workers({**{f"LIPDUB_{k.upper()}": str(v) for k, v in common.items()},
                       "LIPDUB_URL_ALLOW_HOSTS": '["127.0.0.1"]'}, tmp_path / "tmp", beat=True)
    receiver = _Receiver(SECRET)
    clip = write_multishot_clip(tmp_path / "film.mp4", [
        Shot(CLIP, 3.0), Shot(CLIP, 3.0, tint=(1.1, 0.9, 0.9))],
        speech_like(SpeechSpec(seconds=6.0, seed=31)))
    voice = tmp_path / "voice.wav"
    write_wav(str(voice), speech_like(SpeechSpec(seconds=6.0, seed=32)))
    sessions = session_factory(url)

    def parts() -> list[JobPart]:
        with sessions() as session:
            return list(session.scalars(select(JobPart).order_by(JobPart.index)))

    try:
        with TestClient(create_app(Settings(**common, url_allow_hosts=["127.0.0.1"]))) as client:
            auth = {"Authorization": f"Bearer {key}"}
            video, audio = _upload(client, auth, clip), _upload(client, auth, voice)
            first, second = workers.start(), workers.start()
            job_id = scenario.count(client.post("/v1/jobs", headers=auth, json={
                "video": video, "audio": audio,
                "options": {"engine": "warp", "sync_mode": "silence"},
                "webhook_url": receiver.url})).json()["id"]
            killed, victim = _freeze_a_worker_mid_segment(parts, (first, second))
            workers.signal(killed, signal.SIGKILL, scenario)
            killed.wait(10)
            scenario.runs += 1
            workers.start()
            wait_until(lambda: finished(url, job_id), 240, "the job to finish", 0.2)
            wait_until(lambda: len(receiver.received) >= 1, 30, "the webhook")
            time.sleep(1)  # a duplicate would arrive now
            check_jobs(scenario, url, [job_id], receiver.received)
            done = parts()
            runs = {p.index: p.runs for p in done}
            scenario.notes.append(f"{len(done)} segments; runs {runs}; killed in segment "
                                  f"{victim.index}; {len({p.worker for p in done})} workers")
            assert all(p.state is PartState.DONE for p in done)
            assert runs[victim.index] == 2  # the killed one ran again...
            assert all(n == 1 for i, n in runs.items() if i != victim.index)  # ...only it
            job = job_row(url, job_id)
            out = tmp_path / "result.mp4"
            from lipdub.storage import LocalStore

            LocalStore(tmp_path / "store").get_file(job.result_key, out)
            result = inspect_output(out)
            assert result.frames == 150
            assert abs(result.audio_seconds - result.video_seconds) <= 1 / result.fps
            # The same film dubbed in one piece: the same frames, up to re-encoding.
            from lipdub.engines.warp.engine import WarpEngine
            from lipdub.pipeline import dub
            from lipdub.sync import SyncMode
            from tests.media_helpers import read_frames
            from tests.test_segments import MIN_PSNR_DB, psnr

            whole = tmp_path / "whole.mp4"
            dub(clip, voice, whole, WarpEngine(), SyncMode.SILENCE)
            scores = [psnr(a, b) for a, b in zip(read_frames(whole), read_frames(out),
                                                  strict=True)]
            scenario.notes.append(f"PSNR against the one-piece dub: min {min(scores):.1f} dB")
            assert min(scores) >= MIN_PSNR_DB
    finally:
        workers.stop_all(scenario)
        receiver.server.shutdown()
        scenario.save()
        redis.Redis.from_url(broker).flushdb()
    assert scenario.lost == 0 and scenario.duplicates == 0, scenario
