"""The REST gateway end to end on the embedded defaults (SQLite, local storage, in-process
jobs) and on PostgreSQL: uploads, submit, progress, result, idempotency, cancel, tenant
isolation, SSRF and size limits."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.session import engine_for, session_factory, upgrade
from lipdub.jobs.keys import create_key
from lipdub_gateway.app import create_app
from tests.media_helpers import inspect_output


def _postgres_url() -> str:
    """A fresh database on the machine's PostgreSQL server for this test run."""
    name = f"lipdub_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def platform(request: pytest.FixtureRequest, tmp_path: Path):
    url = (f"sqlite:///{tmp_path / 'lipdub.db'}" if request.param == "sqlite"
           else _postgres_url())
    settings = Settings(database_url=url, storage_dir=tmp_path / "store",
                        max_upload_bytes=5_000_000, identity_dir=tmp_path / "ids")
    upgrade(url)
    with session_factory(url)() as session:
        _, key_a = create_key(session, "studio-a")
        _, key_b = create_key(session, "studio-b")
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {key_a}"}, {"X-API-Key": key_b}, settings
    if request.param == "postgresql":
        engine_for(url).dispose()
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _upload(client: TestClient, headers: dict, path: Path) -> str:
    with path.open("rb") as f:
        r = client.post("/v1/uploads", headers=headers, files={"file": (path.name, f)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait(client: TestClient, headers: dict, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_submit_run_and_fetch_the_result(platform, talking_clip: Path, short_voice: Path,
                                         tmp_path: Path) -> None:
    client, a, _, _ = platform
    video, audio = _upload(client, a, talking_clip), _upload(client, a, short_voice)
    r = client.post("/v1/jobs", headers=a, json={"video": video, "audio": audio,
                                                 "options": {"engine": "warp"},
                                                 "metadata": {"title": "ep1"}})
    assert r.status_code == 201, r.text
    job = _wait(client, a, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["progress"] == 100 and job["metadata"] == {"title": "ep1"}
    states = [e["state"] for e in job["events"]]
    assert states == ["queued", "running", "succeeded"]
    result = client.get(f"/v1/jobs/{job['id']}/result", headers=a)
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    out = tmp_path / "result.mp4"
    out.write_bytes(result.content)
    got = inspect_output(out)
    assert abs(got.video_seconds - 2.5) < 0.1 and abs(got.audio_seconds - 2.5) < 0.1
    listed = client.get("/v1/jobs?state=succeeded", headers=a).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]]
    assert client.get("/readyz").status_code == 200
    assert "lipdub_jobs_submitted_total 1.0" in client.get("/metrics").text


def test_idempotency_tenant_isolation_and_limits(platform, talking_clip: Path,
                                                 short_voice: Path) -> None:
    client, a, b, settings = platform
    video, audio = _upload(client, a, talking_clip), _upload(client, a, short_voice)
    body = {"video": video, "audio": audio, "options": {"engine": "warp"}}
    first = client.post("/v1/jobs", headers={**a, "Idempotency-Key": "k1"}, json=body)
    again = client.post("/v1/jobs", headers={**a, "Idempotency-Key": "k1"}, json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/v1/jobs", headers={**a, "Idempotency-Key": "k1"},
                        json={**body, "options": {"engine": "warp", "sync_mode": "loop"}})
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    job_id = first.json()["id"]
    # Another tenant sees nothing of it: 404, never 403.
    for method, path in [("get", f"/v1/jobs/{job_id}"), ("get", f"/v1/jobs/{job_id}/result"),
                         ("post", f"/v1/jobs/{job_id}/cancel")]:
        assert getattr(client, method)(path, headers=b).status_code == 404, path
    assert client.get("/v1/jobs", headers=b).json()["jobs"] == []
    stolen = client.post("/v1/jobs", headers=b, json=body)  # a's uploads are not b's
    assert stolen.status_code == 422
    assert client.get(f"/v1/jobs/{job_id}").status_code == 401
    # SSRF: loopback and private targets are refused, for inputs and webhooks.
    for bad in ({"video": "https://127.0.0.1/x.mp4", "audio": audio},
                {"video": video, "audio": audio, "webhook_url": "https://10.0.0.8/hook"},
                {"video": "http://example.com/x.mp4", "audio": audio}):
        r = client.post("/v1/jobs", headers=a, json=bad)
        assert r.status_code == 400, (bad, r.text)
    # Oversize upload: refused, and nothing is stored.
    store = settings.storage_dir
    before = sorted(p for p in store.rglob("*") if p.is_file())
    big = client.post("/v1/uploads", headers=a,
                      files={"file": ("big.mp4", b"\0" * (settings.max_upload_bytes + 1))})
    assert big.status_code == 413
    assert sorted(p for p in store.rglob("*") if p.is_file()) == before
    _wait(client, a, job_id)


def test_cancel_a_queued_job(platform, talking_clip: Path, short_voice: Path) -> None:
    client, a, _, _ = platform
    video, audio = _upload(client, a, talking_clip), _upload(client, a, short_voice)
    ids = [client.post("/v1/jobs", headers=a, json={"video": video, "audio": audio,
                                                     "options": {"engine": "warp"}}).json()["id"]
           for _ in range(3)]
    canceled = client.post(f"/v1/jobs/{ids[-1]}/cancel", headers=a).json()
    assert canceled["state"] == "canceled"  # still queued behind the others: stopped at once
    for job_id in ids[:-1]:
        assert _wait(client, a, job_id)["state"] == "succeeded"
    assert client.get(f"/v1/jobs/{ids[-1]}", headers=a).json()["state"] == "canceled"
