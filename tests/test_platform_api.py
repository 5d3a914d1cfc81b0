"""The REST gateway end to end on the embedded defaults (SQLite, local storage, in-process
jobs) and on PostgreSQL: uploads, submit, progress, result, idempotency, cancel, tenant
isolation, SSRF and size limits."""

from __future__ import annotations

import json
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
from tests.http_helpers import Site
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
                        max_upload_bytes=5_000_000, identity_dir=tmp_path / "ids",
                        qc_enabled=True)
    upgrade(url)
    with session_factory(url)() as session:
        _, key_a = create_key(session, "studio-a")
        _, key_b = create_key(session, "studio-b")
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {key_a}"}, {"X-API-Key": key_b}, settings
    if request.param == "postgresql":
        _drop_postgres(url)


def _drop_postgres(url: str) -> None:
    engine_for(url).dispose()
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def embedded_database(tmp_path: Path) -> tuple[str, str, str]:
    """A migrated SQLite database with one tenant: (url, tenant id, API key)."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    with session_factory(url)() as session:
        tenant, key = create_key(session, "studio")
    return url, tenant.id, key


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
    client, a, b, _ = platform
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
    # The QC report: the summary on the job, the whole report at /qc (the caller's only).
    assert job["qc"]["shots"] == 1, job["qc"]
    qc = client.get(f"/v1/jobs/{job['id']}/qc", headers=a)
    assert qc.status_code == 200, qc.text
    (shot,) = qc.json()["shots"]
    frames = job["timings"]["output_frames"]
    assert shot["dubbed_frames"] == frames and shot["sync"]["offset_frames"] is not None
    assert qc.json()["coverage"]["frames"] == frames
    assert client.get(f"/v1/jobs/{job['id']}/qc", headers=b).status_code == 404
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
        assert r.status_code == 422, (bad, r.text)
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


class _Receiver:
    """A local webhook receiver (loopback only) that verifies every message it gets."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        """`fail_first`: answer that many messages with a 500 (then record them)."""
        import http.server
        import threading

        from lipdub.webhooks import verify

        received = self.received = []
        self.refused = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["content-length"]))
                verify(secret, dict(self.headers), body)  # raises on a bad signature
                if receiver.refused < fail_first:
                    receiver.refused += 1
                    self.send_response(500)
                else:
                    received.append((self.headers["webhook-id"], json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *_args) -> None:  # noqa: ANN002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def hooked_platform(tmp_path: Path, seed: bytes) -> tuple[_Receiver, Settings, dict]:
    """An embedded platform whose webhooks are signed with a secret made from `seed` and
    may reach a loopback receiver: (the receiver, the settings, the tenant's auth header)."""
    secret = "whsec_" + __import__("base64").b64encode(seed).decode()
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", webhook_secret=secret,
                        allow_http_urls=True, url_allow_hosts=["127.0.0.1"], qc_enabled=True)
    return _Receiver(secret), settings, {"Authorization": f"Bearer {key}"}


def test_signed_webhook_on_completion_and_redelivery(tmp_path: Path, talking_clip: Path,
                                                     short_voice: Path) -> None:
    receiver, settings, auth = hooked_platform(tmp_path, b"0123456789abcdef0123")
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
        job_id = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "options": {"engine": "warp"},
            "webhook_url": receiver.url}).json()["id"]
        assert _wait(client, auth, job_id)["state"] == "succeeded"
        deadline = time.time() + 10
        while not receiver.received and time.time() < deadline:
            time.sleep(0.1)
        (message_id, body), = receiver.received
        qc = body["data"].pop("qc")  # the QC summary rides along; its figures: test_qc
        assert (message_id, body) == (f"msg_{job_id}_succeeded", {
            "type": "job.succeeded", "data": {"id": job_id, "state": "succeeded",
                                              "error_code": None, "error_message": None,
                                              "metadata": {}}})
        assert qc["shots"] == 1 and qc["flagged_shots"] == len(qc["worst"])
        again = client.post(f"/v1/jobs/{job_id}/webhooks/redeliver", headers=auth).json()
        assert again["attempt"] == 2 and again["status_code"] == 204
        assert receiver.received[1][0] == receiver.received[0][0]  # same id: receivers dedupe
        log = client.get(f"/v1/jobs/{job_id}/webhooks", headers=auth).json()
        assert [d["attempt"] for d in log] == [1, 2]
    receiver.server.shutdown()


def test_webhook_signature_helper_rejects_tampering() -> None:
    from lipdub.webhooks import WebhookVerificationError, signed_headers, verify

    headers = signed_headers("whsec_c2VjcmV0", "msg_1", b'{"a":1}', timestamp=1_000_000)
    verify("whsec_c2VjcmV0", headers, b'{"a":1}', now=1_000_010)
    for body, now, secret in [(b'{"a":2}', 1_000_010, "whsec_c2VjcmV0"),
                              (b'{"a":1}', 1_000_010 + 3600, "whsec_c2VjcmV0"),
                              (b'{"a":1}', 1_000_010, "whsec_b3RoZXI=")]:
        with pytest.raises(WebhookVerificationError):
            verify(secret, headers, body, now=now)


def test_jobs_in_flight_beyond_the_limit_get_429(tmp_path: Path) -> None:
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", max_jobs_in_flight=2,
                        s3_input_grants={"studio": ["footage"]})
    auth = {"Authorization": f"Bearer {key}"}
    body = {"video": "s3://footage/a.mp4", "audio": "s3://footage/a.wav"}
    with TestClient(create_app(settings, run_jobs=False)) as client:  # jobs stay queued
        first = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": "one"}, json=body)
        assert client.post("/v1/jobs", headers=auth, json=body).status_code == 201
        refused = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": "three"},
                              json=body)
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "30"
        assert refused.json()["code"] == "too_many_jobs" and "2 jobs" in refused.json()["detail"]
        # Replaying an accepted job is not a new job: still answered.
        replay = client.post("/v1/jobs", headers={**auth, "Idempotency-Key": "one"}, json=body)
        assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
        client.post(f"/v1/jobs/{first.json()['id']}/cancel", headers=auth)
        assert client.post("/v1/jobs", headers=auth, json=body).status_code == 201
        assert len(client.get("/v1/jobs", headers=auth).json()["jobs"]) == 3


def test_url_inputs_are_fetched_and_media_limits_fail_jobs_cleanly(
        tmp_path: Path, talking_clip: Path, short_voice: Path) -> None:
    site = Site()
    site.script["/reel.mp4?X-Amz-Signature=abc"] = [(200, {}, talking_clip.read_bytes())]
    url, _, key = embedded_database(tmp_path)
    auth = {"Authorization": f"Bearer {key}"}
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", allow_http_urls=True,
                        url_allow_hosts=["127.0.0.1"])
    with TestClient(create_app(settings)) as client:
        audio = _upload(client, auth, short_voice)
        body = {"video": f"{site.base}/reel.mp4?X-Amz-Signature=abc", "audio": audio,
                "options": {"engine": "warp"}}
        job = _wait(client, auth, client.post("/v1/jobs", headers=auth, json=body).json()["id"])
        assert job["state"] == "succeeded", job
        assert site.hits["/reel.mp4?X-Amz-Signature=abc"] == 1  # fetched once, not per stage
        stored = [str(p) for p in settings.storage_dir.rglob("*") if p.is_file()]
        assert not any("/work/" in p for p in stored)  # the fetched copy went with the job
    # The same job on a platform that takes at most 2 s per job (the clip is 4 s).
    limited = settings.model_copy(update={"max_input_seconds": 2.0})
    with TestClient(create_app(limited)) as client:
        job = _wait(client, auth, client.post("/v1/jobs", headers=auth, json=body).json()["id"])
        assert job["state"] == "failed" and job["error_code"] == "media_limit_exceeded"
        assert "4 s long" in job["error_message"] and "at most 2 s" in job["error_message"]
        assert client.get(f"/v1/jobs/{job['id']}/result", headers=auth).status_code == 409
        stored = [str(p) for p in settings.storage_dir.rglob("*") if p.is_file()]
        assert not any("/work/" in p for p in stored)  # the failed stage's copy went too
    site.server.shutdown()


def test_cancel_a_running_job_stops_it(tmp_path: Path, samples) -> None:
    clip = samples.clip("long-talk", 16.0, seed=3)
    voice = samples.audio("long-voice", 16.0, seed=5)
    url, tenant_id, key = embedded_database(tmp_path)
    auth = {"Authorization": f"Bearer {key}"}
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    with TestClient(create_app(settings)) as client:
        body = {"video": _upload(client, auth, clip), "audio": _upload(client, auth, voice),
                "options": {"engine": "warp"}}
        job_id = client.post("/v1/jobs", headers=auth, json=body).json()["id"]
        deadline = time.time() + 60
        while time.time() < deadline:
            job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
            if job["state"] == "running" and job["progress"] >= 5:  # inputs fetched
                break
            time.sleep(0.05)
        assert job["state"] == "running", job
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
        job = _wait(client, auth, job_id)
        assert job["state"] == "canceled", job
        assert job["progress"] < 100
        assert [e["state"] for e in job["events"]] == ["queued", "running", "canceled"]
        assert client.get(f"/v1/jobs/{job_id}/result", headers=auth).status_code == 409
    results = settings.storage_dir / "tenants" / tenant_id / "results"
    assert not results.exists() or not any(results.rglob("*.mp4"))


def test_readyz_reports_an_unreachable_broker(tmp_path: Path) -> None:
    url, _, _ = embedded_database(tmp_path)
    for broker, status in (("redis://127.0.0.1:6379/13", 200), ("redis://127.0.0.1:9/0", 503)):
        settings = Settings(database_url=url, storage_dir=tmp_path / "store",
                            executor="celery", broker_url=broker)
        with TestClient(create_app(settings)) as client:
            r = client.get("/readyz")
            assert r.status_code == status, r.text
            if status == 503:
                assert "broker unavailable" in r.json()["detail"]


def test_identities_train_list_use_and_delete(platform, talking_clip: Path,
                                              short_voice: Path, trained_identity,  # noqa: ANN001
                                              rejected_identity) -> None:  # noqa: ANN001
    client, a, b, settings = platform
    footage = _upload(client, a, talking_clip)
    r = client.post("/v1/identities", headers=a,
                    json={"name": "eileen", "videos": [footage], "steps": 12})
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "identity.train"
    training = _wait(client, a, r.json()["id"], timeout=300)
    assert training["state"] == "succeeded" and training["progress"] == 100, training
    listed = client.get("/v1/identities", headers=a).json()
    assert [(i["name"], i["version"]) for i in listed] == [("eileen", 1)]
    eileen = client.get("/v1/identities/eileen", headers=a).json()
    assert eileen["config"]["resolution"] == 128
    assert {"psnr_degraded", "psnr_restored", "detail_error_restored"} <= set(
        eileen["evaluation"])
    assert eileen["accepted"] is (eileen["rejected_because"] == [])
    # Another tenant: it does not exist for them.
    assert client.get("/v1/identities", headers=b).json() == []
    assert client.get("/v1/identities/eileen", headers=b).status_code == 404
    assert client.delete("/v1/identities/eileen", headers=b).status_code == 404
    # A version the gate rejected (one training step): the API says so and why, and a dub
    # asking for it has no restoration and says why.
    _store_version(settings, "studio-a", "eileen", 2, rejected_identity)
    eileen = client.get("/v1/identities/eileen", headers=a).json()
    assert eileen["accepted"] is False and eileen["rejected_because"], eileen
    audio = _upload(client, a, short_voice)
    skipped = _wait(client, a, client.post("/v1/jobs", headers=a, json={
        "video": footage, "audio": audio,
        "options": {"engine": "warp", "identity": "eileen"}}).json()["id"])
    assert skipped["state"] == "succeeded", skipped
    assert "restore" not in skipped["timings"]["stages"]
    assert any("Identity 'eileen' v2 was not applied" in w
               for w in skipped["timings"]["warnings"]), skipped["timings"]["warnings"]
    # A version that passed the gate restores the face.
    _store_version(settings, "studio-a", "eileen", 3, trained_identity)
    assert client.get("/v1/identities/eileen", headers=a).json()["accepted"] is True
    restored = _wait(client, a, client.post("/v1/jobs", headers=a, json={
        "video": footage, "audio": audio,
        "options": {"engine": "warp", "identity": "eileen"}}).json()["id"])
    assert restored["state"] == "succeeded", restored
    assert restored["timings"]["stages"]["restore"]["frames"] > 0
    assert restored["timings"]["warnings"] == []
    unknown = client.post("/v1/jobs", headers=a, json={
        "video": footage, "audio": audio, "options": {"engine": "warp", "identity": "nobody"}})
    assert unknown.status_code == 422 and unknown.json()["code"] == "identity_not_found"
    # Training again makes version 4; deleting removes every version's files.
    again = client.post("/v1/identities", headers=a,
                        json={"name": "eileen", "videos": [footage], "steps": 10})
    assert _wait(client, a, again.json()["id"], timeout=300)["state"] == "succeeded"
    assert client.get("/v1/identities/eileen", headers=a).json()["version"] == 4
    stored = settings.storage_dir / "tenants"
    assert len(list(stored.rglob("identities/eileen/v*/restorer.pt"))) == 4
    assert client.delete("/v1/identities/eileen", headers=a).status_code == 204
    assert client.get("/v1/identities/eileen", headers=a).status_code == 404
    assert list(stored.rglob("identities/eileen/v*/restorer.pt")) == []
    bad = client.post("/v1/identities", headers=a, json={"name": "../x", "videos": [footage]})
    assert bad.status_code == 422


def _store_version(settings: Settings, tenant_name: str, name: str, version: int,
                   trained) -> None:  # noqa: ANN001 - IdentityVersion
    """A trained version stored for a tenant the way the identity.train job stores one:
    its files under the tenant's key, then the row."""
    from sqlalchemy import select

    from lipdub.db.models import Identity, Tenant
    from lipdub.storage import LocalStore, tenant_key

    with session_factory(settings.database_url)() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
        prefix = tenant_key(tenant.id, "identities", name, f"v{version}")
        for file in ("restorer.pt", "identity.json"):
            LocalStore(settings.storage_dir).put_file(f"{prefix}/{file}", trained.path / file)
        row = session.scalar(select(Identity).where(Identity.tenant_id == tenant.id,
                                                    Identity.name == name))
        row.version, row.storage_key = version, prefix
        row.info = {**trained.info, "version": version}
        session.commit()


def test_an_oversize_body_is_cut_off_while_it_arrives(tmp_path: Path) -> None:
    """No Content-Length, a body far past the limit: the gateway answers 413 after reading
    about the limit, instead of spooling the whole body to disk first."""
    import asyncio

    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store",
                        max_upload_bytes=1_000_000)
    app = create_app(settings, run_jobs=False)
    chunk, chunks = b"\0" * 65_536, 200  # 13 MB offered
    consumed = 0
    sent: list[dict] = []

    head = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")

    async def receive() -> dict:
        nonlocal consumed
        consumed += 1
        body = head if consumed == 1 else chunk
        return {"type": "http.request", "body": body, "more_body": consumed < chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    boundary = "xyz"  # a valid multipart start, then a file that never ends
    scope = {"type": "http", "method": "POST", "path": "/v1/uploads", "raw_path": b"/v1/uploads",
             "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(b"x-api-key", key.encode()),
                         (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
                         (b"transfer-encoding", b"chunked")]}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "upload_too_large"
    read = len(head) + (consumed - 1) * len(chunk)
    assert read <= 1_000_000 + 64 * 1024 + len(chunk) < chunks * len(chunk)  # stopped early
    assert not (settings.storage_dir / "tenants").exists()
    with TestClient(app) as client:  # JSON bodies have their own, small limit
        r = client.post("/v1/jobs", headers={"X-API-Key": key},
                        content=b'{"video": "' + b"a" * 2_000_000 + b'"}')
        assert r.status_code == 413


def test_webhook_targets_are_checked_again_when_sent(tmp_path: Path) -> None:
    """A webhook host that resolved to a public address at submission may point inside the
    network by the time the job ends (DNS rebinding): the send-time check refuses it."""
    from lipdub.db.models import Job, JobState
    from lipdub.jobs.context import JobContext
    from lipdub.jobs.service import JobRequest, create_job, transition

    url, tenant_id, _ = embedded_database(tmp_path)
    context = JobContext.from_settings(Settings(database_url=url,
                                                storage_dir=tmp_path / "store"))
    with context.sessions() as session:
        job, _ = create_job(session, tenant_id, JobRequest(
            "s3://b/v.mp4", "s3://b/a.wav", {}, webhook_url="https://10.20.30.40/hook"))
        transition(session, session.get(Job, job.id), JobState.RUNNING, "started")
        transition(session, job, JobState.SUCCEEDED, "done")
        record = context.notify(session, job)
        assert record.status_code is None and "10.20.30.40" in record.error
        assert record.next_attempt_at is None  # a refused target is not retried


def test_restore_auto_trains_on_the_footage_and_the_gate_decides(tmp_path: Path, talking_clip: Path,
                                                      short_voice: Path) -> None:
    url, _, key = embedded_database(tmp_path)
    auth = {"Authorization": f"Bearer {key}"}
    # One step: the restorer stays the identity, which the gate rejects.
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", restore_steps=1,
                        restore_batch_size=4)
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
        both = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio,
            "options": {"engine": "warp", "identity": "x", "restore": "auto"}})
        assert both.status_code == 422 and "not both" in both.text
        r = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "options": {"engine": "warp", "restore": "auto"}})
        observed = []
        deadline = time.time() + 300
        while time.time() < deadline:
            job = client.get(f"/v1/jobs/{r.json()['id']}", headers=auth).json()
            observed.append(job["progress"])
            if job["state"] in ("succeeded", "failed", "canceled"):
                break
            time.sleep(0.05)
        assert job["state"] == "succeeded", job
        assert job["stages_done"] == ["probe", "faces", "identity", "lip-sync", "encode",
                                      "publish"]  # QC is off in this test (conftest)
        # The gate rejected the job's own restorer: the dub went on without it.
        assert "restore" not in job["timings"]["stages"]
        assert any("The restorer trained on this footage was not applied" in w
                   for w in job["timings"]["warnings"]), job["timings"]
        assert observed == sorted(observed), observed  # the bar never goes back
        assert observed[-1] == 100
    stored = [str(p) for p in settings.storage_dir.rglob("*") if p.is_file()]
    assert not any("/work/" in p for p in stored)  # the job's own restorer went with it


def test_progress_webhooks_when_asked(tmp_path: Path, talking_clip: Path,
                                      short_voice: Path) -> None:
    receiver, settings, auth = hooked_platform(tmp_path, b"progress-secret-0123")
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
        job_id = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "webhook_url": receiver.url,
            "options": {"engine": "warp", "webhook_progress": True, "output_format": "mkv",
                        "normalise_loudness": True}}).json()["id"]
        assert _wait(client, auth, job_id)["state"] == "succeeded"
        result = client.get(f"/v1/jobs/{job_id}/result", headers=auth)
        assert result.headers["content-type"] == "video/x-matroska"
        assert result.content[:4] == b"\x1a\x45\xdf\xa3"  # the Matroska (EBML) signature
        deadline = time.time() + 10
        while len(receiver.received) < 6 and time.time() < deadline:
            time.sleep(0.1)
    receiver.server.shutdown()
    ids = [m for m, _ in receiver.received]  # each signature verified on receipt
    assert ids == [f"msg_{job_id}_stage_{s}" for s in ("probe", "faces", "lip-sync", "encode",
                                                        "qc")] + [f"msg_{job_id}_succeeded"]
    progress = [p["data"]["progress"] for _, p in receiver.received[:5]]
    assert progress == sorted(progress) and progress[0] > 0
    assert receiver.received[1][1]["data"]["next_stage"] == "lip-sync"


def test_ids_with_a_nul_or_of_any_other_shape_are_unknown_on_every_database(platform) -> None:  # noqa: ANN001
    """PostgreSQL cannot even compare a string holding NUL: such ids (in a path or a body)
    are unknown without a query, 404 or 422, never 500."""
    client, auth, _, _ = platform
    for job_id in ("%00", "a%00b", "x" * 300):
        assert client.get(f"/v1/jobs/{job_id}", headers=auth).status_code == 404
    r = client.post("/v1/jobs", headers=auth, json={"video": "\u0000", "audio": "a\u0000"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_input", r.text
    assert client.post("/v1/uploads/%00/complete", headers=auth,
                       json={"etags": ["x"]}).status_code < 500


def test_a_job_dubs_only_its_ranges_and_bad_ranges_are_refused(
        platform, talking_clip: Path, short_voice: Path) -> None:
    client, a, _, _ = platform
    video, audio = _upload(client, a, talking_clip), _upload(client, a, short_voice)

    def submit(ranges: object) -> object:
        return client.post("/v1/jobs", headers=a, json={
            "video": video, "audio": audio, "options": {"engine": "warp", "ranges": ranges}})

    # The form, order and overlaps are checked at once (422, naming the field).
    for ranges, message in ((["1-"], "ranges"), (["soon-later"], "ranges"),
                            (["2-1"], "ends before it starts"),
                            (["0.5-1.5", "1-2"], "overlaps an earlier range"),
                            (["10f-20f", "15f-30f"], "overlaps an earlier range"),
                            ([f"{i}f-{i + 1}f" for i in range(0, 1002, 2)], "ranges"),
                            ("0-1", "ranges")):
        r = submit(ranges)
        assert r.status_code == 422, (ranges, r.text)
        assert message in r.text, (ranges, r.text)
    # What needs the video (its rate, the output's length) fails the job as it starts.
    for ranges, message in ((["1-9"], "runs past the end of the output"),
                            (["00:00:01:30-00:00:02:00"], "is not a timecode at this video")):
        failed = _wait(client, a, submit(ranges).json()["id"])
        assert failed["state"] == "failed" and failed["error_code"] == "bad_option", failed
        assert message in failed["error_message"]
        assert "faces" not in failed["stages_done"]  # refused before the analysis
    done = _wait(client, a, submit(["0.4-1.2", "00:00:01:15-00:00:02:00"]).json()["id"])
    assert done["state"] == "succeeded", done
    assert done["timings"]["outside_ranges"] == done["timings"]["output_frames"] - 20 - 10
