"""Batches: a manifest (JSON Lines or CSV) admitted whole or not at all (every bad line
listed at once), its items run as jobs with their usual webhooks plus one batch.completed,
dispatched a few at a time per tenant so that another tenant's job is not queued behind a
large batch; idempotent, tenant-isolated, cancelable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.session import session_factory, upgrade
from lipdub.jobs.keys import create_key
from lipdub.jobs.manifest import MAX_MANIFEST_BYTES
from lipdub.samples.talking import ClipSpec
from lipdub_gateway.app import create_app
from tests.test_platform_api import (
    _drop_postgres,
    _postgres_url,
    _Receiver,
    _upload,
    embedded_database,
)

SECRET = "whsec_YmF0Y2gtdGVzdC1zZWNyZXQtMTIzNDU2Nzg="
TINY = ClipSpec(width=320, height=180, face_height=80, face_centre=(0.5, 0.42))
JSONL = {"Content-Type": "application/jsonl"}


def _jsonl(items: list[dict]) -> bytes:
    return "\n".join(json.dumps(i) for i in items).encode()


def _tiny_inputs(client: TestClient, auth: dict, samples) -> tuple[str, str]:  # noqa: ANN001
    """A one-second clip and voice, uploaded as the caller's: (video id, audio id)."""
    return (_upload(client, auth, samples.clip("batch-tiny", 1.0, seed=3, spec=TINY)),
            _upload(client, auth, samples.audio("batch-voice", 1.0, seed=4)))


def _with_receiver(tmp_path: Path, **more: object) -> tuple[Settings, dict]:
    """An embedded platform whose webhooks may go to a loopback receiver: (settings, auth)."""
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", webhook_secret=SECRET,
                        allow_http_urls=True, url_allow_hosts=["127.0.0.1"], **more)
    return settings, {"Authorization": f"Bearer {key}"}


def _wait_batch(client: TestClient, auth: dict, batch_id: str, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        batch = client.get(f"/v1/batches/{batch_id}", headers=auth).json()
        if batch["completed_at"]:
            return batch
        time.sleep(0.2)
    raise AssertionError(f"batch {batch_id} did not complete: {batch['counts']}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path):
    url = (f"sqlite:///{tmp_path / 'lipdub.db'}" if request.param == "sqlite"
           else _postgres_url())
    upgrade(url)
    with session_factory(url)() as session:
        _, key_a = create_key(session, "studio-a")
        _, key_b = create_key(session, "studio-b")
    yield url, {"Authorization": f"Bearer {key_a}"}, {"Authorization": f"Bearer {key_b}"}
    if request.param == "postgresql":
        _drop_postgres(url)


def test_a_bad_manifest_lists_every_error_and_creates_nothing(database, tmp_path: Path,
                                                              samples) -> None:  # noqa: ANN001
    url, auth, _ = database
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    with TestClient(create_app(settings, run_jobs=False)) as client:
        clip, voice = _tiny_inputs(client, auth, samples)
        good = {"video": clip, "audio": voice, "output_name": "ep1-fr"}
        lines = [json.dumps(good),                                        # 1: fine
                 json.dumps({"video": clip}),                             # 2: no audio
                 json.dumps({**good, "output_name": "b",
                             "options": {"engine": "nope"}}),             # 3: unknown engine
                 json.dumps({**good, "output_name": "c", "video": "ftp://x/y.mp4"}),  # 4
                 json.dumps({**good}),                                    # 5: name taken
                 '{"video": "upl_1", "audio": ',                          # 6: invalid JSON
                 json.dumps({**good, "output_name": "d", "colour": 1}),   # 7: unknown field
                 json.dumps({**good, "output_name": "e",
                             "video": "upl_doesnotexist"})]               # 8: no such upload
        r = client.post("/v1/batches", headers={**auth, **JSONL},
                        content="\n".join(lines).encode())
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "invalid_manifest"
        assert sorted({e["line"] for e in problem["errors"]}) == [2, 3, 4, 5, 6, 7, 8]
        reasons = {e["line"]: e["reason"] for e in problem["errors"]}
        assert "audio" in reasons[2] and "engine" in reasons[3]
        assert "line 1" in reasons[5] and "JSON" in reasons[6] and "colour" in reasons[7]
        for body, headers, why in [
                (b"", JSONL, "no items"), (b"\n\n", JSONL, "no items"),
                (b"x" * (MAX_MANIFEST_BYTES + 1), JSONL, "over"),
                (b"video,audio,speed\nupl_1,upl_2,3\n", {"Content-Type": "text/csv"},
                 "unknown: speed"),
                (b"\xff\xfe\x00", JSONL, "UTF-8"),
                (b"[" * 200_000, JSONL, "nested too deeply"),
                (b"video,audio,options\nupl_1,upl_2," + b"[" * 100_000 + b"\n",
                 {"Content-Type": "text/csv"}, "too deep"),
                (b"video,audio\nupl_1," + b"a" * 300_000 + b"\n", {"Content-Type": "text/csv"},
                 "not valid CSV"),
                (b"video,audio\n\x00,\x00\n", {"Content-Type": "text/csv"},  # PostgreSQL
                 "not yours")]:  # cannot compare a NUL: refused before any query
            r = client.post("/v1/batches", headers={**auth, **headers}, content=body)
            assert r.status_code == 422 and why in r.json()["errors"][0]["reason"], r.text
        assert client.get("/v1/batches", headers=auth).json()["batches"] == []
        assert client.get("/v1/jobs", headers=auth).json()["jobs"] == []
        # The same manifest as CSV, fixed: admitted; replayed with its key: the same batch.
        csv = (f"video,audio,output_name,options\n{clip},{voice},a,\"{{\"\"engine\"\": "
               f"\"\"warp\"\"}}\"\n{clip},{voice},b,\n").encode()
        first = client.post("/v1/batches", headers={**auth, "Content-Type": "text/csv",
                                                     "Idempotency-Key": "k1"}, content=csv)
        assert first.status_code == 201, first.text
        again = client.post("/v1/batches", headers={**auth, "Content-Type": "text/csv",
                                                     "Idempotency-Key": "k1"}, content=csv)
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        other = client.post("/v1/batches", headers={**auth, **JSONL, "Idempotency-Key": "k1"},
                            content=_jsonl([good]))
        assert other.status_code == 409
        batch = first.json()
        assert batch["total"] == 2 and [i["output_name"] for i in batch["items"]] == ["a", "b"]


def test_batches_are_the_tenants_own(database, tmp_path: Path, samples) -> None:  # noqa: ANN001
    url, auth_a, auth_b = database
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    with TestClient(create_app(settings, run_jobs=False)) as client:
        clip, voice = _tiny_inputs(client, auth_a, samples)
        batch = client.post("/v1/batches", headers={**auth_a, **JSONL}, content=_jsonl(
            [{"video": clip, "audio": voice}] * 3)).json()
        for method, path in [("get", f"/v1/batches/{batch['id']}"),
                             ("post", f"/v1/batches/{batch['id']}/cancel")]:
            assert getattr(client, method)(path, headers=auth_b).status_code == 404
        assert client.get("/v1/batches", headers=auth_b).json()["batches"] == []
        # Another tenant's uploads are not inputs: the line is refused.
        r = client.post("/v1/batches", headers={**auth_b, **JSONL},
                        content=_jsonl([{"video": clip, "audio": voice}]))
        assert r.status_code == 422 and r.json()["errors"][0]["line"] == 1
        canceled = client.post(f"/v1/batches/{batch['id']}/cancel", headers=auth_a).json()
        assert canceled["counts"]["canceled"] == 3 and canceled["completed_at"]


def test_a_batch_completes_with_every_webhook_and_one_batch_completed(
        tmp_path: Path, samples) -> None:  # noqa: ANN001
    receiver = _Receiver(SECRET)
    settings, auth = _with_receiver(tmp_path, batch_slots_per_tenant=2)
    with TestClient(create_app(settings)) as client:
        clip, voice = _tiny_inputs(client, auth, samples)
        items = [{"video": clip, "audio": voice, "output_name": f"item-{n:02d}",
                  "options": {"engine": "warp"}, "metadata": {"n": n}} for n in range(20)]
        r = client.post(f"/v1/batches?webhook_url={receiver.url}",
                        headers={**auth, **JSONL}, content=_jsonl(items))
        assert r.status_code == 201, r.text
        batch = _wait_batch(client, auth, r.json()["id"], timeout=300)
        assert batch["counts"]["succeeded"] == 20 and batch["progress"] == 100
        assert all(i["result_url"] for i in batch["items"])
        assert client.get(batch["items"][0]["result_url"], headers=auth).status_code == 200
        deadline = time.time() + 10
        while len(receiver.received) < 21 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a duplicate would arrive now
    receiver.server.shutdown()
    types = [body["type"] for _, body in receiver.received]
    assert types.count("job.succeeded") == 20 and types.count("batch.completed") == 1
    ids = [message_id for message_id, _ in receiver.received]
    assert len(ids) == len(set(ids)) == 21
    completed = next(b for _, b in receiver.received if b["type"] == "batch.completed")
    assert completed["data"]["counts"]["succeeded"] == 20


def test_another_tenants_job_is_not_queued_behind_a_large_batch(tmp_path: Path,
                                                                samples) -> None:  # noqa: ANN001
    url, _, key_a = embedded_database(tmp_path)
    with session_factory(url)() as session:
        _, key_b = create_key(session, "studio-b")
    settings = Settings(database_url=url, storage_dir=tmp_path / "store",
                        batch_slots_per_tenant=1)
    auth_a, auth_b = {"Authorization": f"Bearer {key_a}"}, {"Authorization": f"Bearer {key_b}"}
    with TestClient(create_app(settings)) as client:
        spec = {"video": None, "audio": None, "options": {"engine": "warp"}}
        clip_a, voice_a = _tiny_inputs(client, auth_a, samples)
        batch = client.post("/v1/batches", headers={**auth_a, **JSONL}, content=_jsonl(
            [{**spec, "video": clip_a, "audio": voice_a}] * 6)).json()
        clip_b, voice_b = _tiny_inputs(client, auth_b, samples)
        single = client.post("/v1/jobs", headers=auth_b, json={
            **spec, "video": clip_b, "audio": voice_b}).json()["id"]
        done = _wait_batch(client, auth_a, batch["id"], timeout=300)
        b_job = client.get(f"/v1/jobs/{single}", headers=auth_b).json()

        def started(job: dict) -> str:
            return next(e["at"] for e in job["events"] if e["state"] == "running")

        starts = sorted(started(client.get(f"/v1/jobs/{i['job_id']}", headers=auth_a).json())
                        for i in done["items"])
        # B's job started right after the batch item that was running, not after the batch.
        assert started(b_job) < starts[1], (started(b_job), starts)


def test_batch_completed_is_retried_like_a_jobs_message(tmp_path: Path,
                                                        samples) -> None:  # noqa: ANN001
    receiver = _Receiver(SECRET, fail_first=1)  # the first message (batch.completed) fails
    settings, auth = _with_receiver(tmp_path, sweep_interval_s=0.5)
    with TestClient(create_app(settings)) as client:
        clip, voice = _tiny_inputs(client, auth, samples)
        r = client.post(f"/v1/batches?webhook_url={receiver.url}", headers={**auth, **JSONL},
                        content=_jsonl([{"video": clip, "audio": voice,
                                         "options": {"engine": "warp"}}]))
        batch = _wait_batch(client, auth, r.json()["id"])
        deadline = time.time() + 30
        while len(receiver.received) < 2 and time.time() < deadline:
            time.sleep(0.2)
        log = client.get(f"/v1/jobs/{batch['items'][0]['job_id']}/webhooks",
                         headers=auth).json()
    receiver.server.shutdown()
    sent = [(d["event_type"], d["attempt"], d["status_code"]) for d in log]
    assert ("batch.completed", 1, 500) in sent and ("batch.completed", 2, 204) in sent, sent
    types = sorted(body["type"] for _, body in receiver.received)
    assert types == ["batch.completed", "job.succeeded"]
