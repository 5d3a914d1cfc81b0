"""The request shapes a hostile test sent to the gateway, each answered 4xx with a clear
problem (never 5xx), nothing half-created; and the smaller defects it found."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from lipdub.cli import app as cli
from lipdub.config import Settings, get_settings
from lipdub.db.session import session_factory
from lipdub.jobs.keys import create_key
from lipdub_gateway.app import create_app
from tests.test_platform_api import _upload, _wait, embedded_database


@pytest.fixture
def gateway(tmp_path: Path):
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    with TestClient(create_app(settings, run_jobs=False)) as client:
        yield client, {"Authorization": f"Bearer {key}"}, url


def _nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def test_deep_or_huge_metadata_is_refused_and_nothing_is_created(gateway) -> None:  # noqa: ANN001
    client, auth, _ = gateway
    upload = client.post("/v1/uploads", headers=auth, files={"file": ("a.wav", b"x")})
    body = {"video": upload.json()["id"], "audio": upload.json()["id"]}
    for metadata in (_nested(400), _nested(9), {"blob": "x" * 20_000}, [1] * 10):
        r = client.post("/v1/jobs", headers=auth, json={**body, "metadata": metadata})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
    deep = '{"video": "a", "audio": "a", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = client.post("/v1/jobs", headers={**auth, "content-type": "application/json"},
                    content=deep)
    assert 400 <= r.status_code < 500, r.text
    assert client.get("/v1/jobs", headers=auth).json()["jobs"] == []
    ok = client.post("/v1/jobs", headers=auth, json={**body, "metadata": _nested(8)})
    assert ok.status_code == 201, ok.text
    listed = client.get("/v1/jobs", headers=auth)
    assert listed.status_code == 200 and len(listed.json()["jobs"]) == 1


@pytest.mark.parametrize("url", ["https://example.com:99999/x.mp4", "https://[::1/x.mp4",
                                 f"https://{'a' * 64}.example.com/x.mp4",
                                 "https://example.com:-1/x", "https://exa mple.com/x"])
def test_malformed_urls_are_422_with_a_reason(gateway, url: str) -> None:  # noqa: ANN001
    client, auth, _ = gateway
    for body in ({"video": url, "audio": url},
                 {"video": "u", "audio": "u", "webhook_url": url}):
        r = client.post("/v1/jobs", headers=auth, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] in ("unsafe_url", "unknown_input")


@pytest.mark.parametrize("limit", ["-9223372036854775809", "-2", "0", "201", "x", "1e3"])
def test_bad_page_sizes_are_422(gateway, limit: str) -> None:  # noqa: ANN001
    client, auth, _ = gateway
    r = client.get(f"/v1/jobs?limit={limit}", headers=auth)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request", r.text


@pytest.mark.parametrize("name", ["..", ".", "../../etc/passwd", "....", "\u00e9\u00e9.mp4",
                                  "a" * 300, ".hidden"])
def test_odd_upload_filenames_are_stored_safely(gateway, name: str) -> None:  # noqa: ANN001
    client, auth, _ = gateway
    r = client.post("/v1/uploads", headers=auth, files={"file": (name, b"data")})
    assert r.status_code == 201, r.text
    assert r.json()["size_bytes"] == 4


def test_oversized_fields_are_422_not_500(gateway) -> None:  # noqa: ANN001
    client, auth, _ = gateway
    long_key = {**auth, "Idempotency-Key": "k" * 256}
    r = client.post("/v1/jobs", headers=long_key, json={"video": "a", "audio": "b"})
    assert r.status_code == 422, r.text
    r = client.post("/v1/jobs", headers=auth, json={"video": "v" * 5000, "audio": "b"})
    assert r.status_code == 422, r.text
    r = client.post("/v1/uploads/direct", headers=auth,
                    json={"filename": "f.mov", "size_bytes": 2**70})
    assert r.status_code == 422, r.text
    r = client.get("/v1/jobs", headers=auth, params={"cursor": "c" * 100})
    assert r.status_code == 422, r.text
    r = client.post("/v1/jobs", headers={**auth, "content-type": "application/json"},
                    content=b"\xff\xfe{not json")
    assert r.status_code == 400 and r.json()["code"] == "malformed_body", r.text


def test_timestamps_carry_their_zone_in_every_answer(gateway) -> None:  # noqa: ANN001
    client, auth, _ = gateway
    upload = client.post("/v1/uploads", headers=auth, files={"file": ("a.wav", b"x")})
    created = client.post("/v1/jobs", headers=auth,
                          json={"video": upload.json()["id"], "audio": upload.json()["id"]})
    got = client.get(f"/v1/jobs/{created.json()['id']}", headers=auth).json()
    listed = client.get("/v1/jobs", headers=auth).json()["jobs"][0]
    for job in (created.json(), got, listed):
        for stamp in (job["created_at"], job["updated_at"], job["events"][0]["at"]):
            assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp


def test_openapi_documents_the_error_answers(gateway) -> None:  # noqa: ANN001
    client, _, _ = gateway
    paths = client.get("/openapi.json").json()["paths"]
    submit = paths["/v1/jobs"]["post"]["responses"]
    assert {"401", "409", "422", "429", "503"} <= set(submit)
    assert "application/problem+json" in submit["429"]["content"]
    assert {"401", "404"} <= set(paths["/v1/jobs/{job_id}"]["get"]["responses"])
    assert {"404", "409"} <= set(paths["/v1/jobs/{job_id}/result"]["get"]["responses"])


def test_a_face_index_the_footage_does_not_have_is_a_clear_error(
        tmp_path: Path, talking_clip: Path, short_voice: Path) -> None:
    url, tenant_id, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
        r = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "options": {"engine": "warp", "face": "99"}})
        job = _wait(client, auth, r.json()["id"])
    assert job["state"] == "failed" and job["error_code"] == "bad_option", job
    assert "Face 99" in job["error_message"] and "below 1" in job["error_message"]


def test_error_messages_show_no_worker_paths_or_tenant_ids(tmp_path: Path) -> None:
    url, tenant_id, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as client:
        bogus = client.post("/v1/uploads", headers=auth,
                            files={"file": ("clip.mp4", b"not a video at all")}).json()["id"]
        r = client.post("/v1/jobs", headers=auth, json={"video": bogus, "audio": bogus})
        job = _wait(client, auth, r.json()["id"])
    assert job["state"] == "failed" and job["error_code"] != "internal_error", job
    text = json.dumps(job)
    assert tenant_id not in text and "/tmp" not in text and str(tmp_path) not in text, text


def test_keys_can_be_listed_and_revoked(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    url, _, _ = embedded_database(tmp_path)
    monkeypatch.setenv("LIPDUB_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        with session_factory(url)() as session:
            _, key = create_key(session, "dubbing-house")
        settings = Settings(database_url=url, storage_dir=tmp_path / "store", auth_cache_s=0)
        runner = CliRunner()
        with TestClient(create_app(settings, run_jobs=False)) as client:
            auth = {"Authorization": f"Bearer {key}"}
            assert client.get("/v1/jobs", headers=auth).status_code == 200
            listed = runner.invoke(cli, ["keys", "list", "--tenant", "dubbing-house"])
            assert listed.exit_code == 0 and key[:10] in listed.output
            assert key not in listed.output  # only the prefix is ever shown
            row = next(line for line in listed.output.splitlines() if key[:10] in line)
            key_id, _, tenant, _, revoked_at = row.split()
            assert tenant == "dubbing-house" and revoked_at == "-"
            revoked = runner.invoke(cli, ["keys", "revoke", key_id])
            assert revoked.exit_code == 0, revoked.output
            assert client.get("/v1/jobs", headers=auth).status_code == 401
            again = runner.invoke(cli, ["keys", "list", "--tenant", "dubbing-house"])
            row = next(line for line in again.output.splitlines() if key[:10] in line)
            assert row.split()[-1] != "-"  # the time it was revoked
            missing = runner.invoke(cli, ["keys", "revoke", "nope"])
            assert missing.exit_code == 2 and "No API key" in missing.output
    finally:
        get_settings.cache_clear()
