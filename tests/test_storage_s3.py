"""Object storage against a real S3-compatible server process (moto's standalone server on
loopback; the compose file uses MinIO): the store itself, and a whole job stored in S3."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from lipdub.config import Settings
from lipdub.storage import S3Store
from lipdub_gateway.app import create_app
from tests.media_helpers import inspect_output
from tests.test_platform_api import _upload, _wait, embedded_database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="dubs")
    yield endpoint
    server.stop()


def test_s3_store_round_trip(s3: str, tmp_path: Path) -> None:
    store = S3Store("dubs", s3)
    store.ping()
    size = store.put_stream("tenants/t1/uploads/a.bin", io.BytesIO(b"x" * 70_000))
    assert size == 70_000 and store.exists("tenants/t1/uploads/a.bin")
    store.get_file("tenants/t1/uploads/a.bin", tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 70_000
    url = store.url("tenants/t1/uploads/a.bin")
    assert httpx.get(url).content == b"x" * 70_000  # a working presigned URL
    store.delete("tenants/t1/uploads/a.bin")
    assert not store.exists("tenants/t1/uploads/a.bin")


def test_job_with_s3_storage_returns_a_presigned_result(s3: str, tmp_path: Path,
                                                        talking_clip: Path,
                                                        short_voice: Path) -> None:
    url, tenant_id, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "unused", s3_bucket="dubs",
                        s3_endpoint_url=s3)
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, talking_clip), _upload(client, auth, short_voice)
        job_id = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio, "options": {"engine": "warp"}}).json()["id"]
        assert _wait(client, auth, job_id)["state"] == "succeeded"
        result = client.get(f"/v1/jobs/{job_id}/result", headers=auth, follow_redirects=False)
        assert result.status_code == 307
        out = tmp_path / "result.mp4"
        out.write_bytes(httpx.get(result.headers["location"]).content)
    assert inspect_output(out).frames > 0
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3).list_objects_v2(
        Bucket="dubs")["Contents"]]
    assert all(k.startswith(f"tenants/{tenant_id}/") for k in keys)  # laid out per tenant
    assert any(f"/results/{job_id}/" in k for k in keys)
