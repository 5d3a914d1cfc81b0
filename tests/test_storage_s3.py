"""Object storage against a real S3-compatible server process (moto's standalone server on
loopback; the compose file uses MinIO): the store itself, and a whole job stored in S3."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
import httpx
import numpy as np
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.session import session_factory
from lipdub.jobs.keys import create_key
from lipdub.storage import S3Store
from lipdub_gateway.app import create_app
from tests.media_helpers import inspect_output
from tests.test_platform_api import _upload, _wait, embedded_database


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


def test_presigned_urls_carry_the_public_endpoint(s3: str) -> None:
    """The platform reaches the store at one address, clients at another (MinIO inside a
    compose network): URLs are signed for the clients' one, and work there."""
    public = s3.replace("127.0.0.1", "localhost")
    store = S3Store("dubs", s3, public_endpoint_url=public)
    store.put_stream("tenants/t1/results/r.bin", io.BytesIO(b"y" * 1000))
    url = store.url("tenants/t1/results/r.bin")
    assert url.startswith(public + "/") and httpx.get(url).content == b"y" * 1000
    upload = store.start_multipart("tenants/t1/uploads/big.bin")
    assert all(u.startswith(public + "/") for u in store.part_urls(
        "tenants/t1/uploads/big.bin", upload, 2, 600))
    assert S3Store("dubs", s3).url("tenants/t1/results/r.bin").startswith(s3 + "/")


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


def _put_parts(direct: dict, data: bytes) -> list[str]:
    """What a client does: PUT each part to its presigned URL, keep the ETags."""
    size = direct["part_bytes"]
    etags = []
    for n, url in enumerate(direct["part_urls"]):
        r = httpx.put(url, content=data[n * size:(n + 1) * size], timeout=60)
        assert r.status_code == 200, r.text
        etags.append(r.headers["etag"])
    return etags


def test_direct_multipart_upload_straight_to_s3(s3: str, tmp_path: Path, talking_clip: Path,
                                                short_voice: Path) -> None:
    url, tenant_id, key = embedded_database(tmp_path)
    with session_factory(url)() as session:
        _, other_key = create_key(session, "other")
    settings = Settings(database_url=url, storage_dir=tmp_path / "unused", s3_bucket="dubs",
                        s3_endpoint_url=s3, max_upload_bytes=64 * 1024**2)
    auth, other = {"Authorization": f"Bearer {key}"}, {"X-API-Key": other_key}
    s3_client = boto3.client("s3", endpoint_url=s3)
    data = np.random.default_rng(0).integers(0, 256, 17 * 1024**2 + 123, np.uint8).tobytes()
    with TestClient(create_app(settings)) as client:
        direct = client.post("/v1/uploads/direct", headers=auth,
                             json={"filename": "reel 1.mov", "size_bytes": len(data)}).json()
        assert direct["part_bytes"] == 8 * 1024**2 and len(direct["part_urls"]) == 3
        # Not an input until complete; not another tenant's to complete.
        pending = client.post("/v1/jobs", headers=auth, json={"video": direct["id"],
                                                              "audio": direct["id"]})
        assert pending.status_code == 422 and pending.json()["code"] == "upload_not_complete"
        etags = _put_parts(direct, data)
        assert client.post(f"/v1/uploads/{direct['id']}/complete", headers=other,
                           json={"etags": etags}).status_code == 404
        done = client.post(f"/v1/uploads/{direct['id']}/complete", headers=auth,
                           json={"etags": etags})
        assert done.status_code == 200 and done.json()["size_bytes"] == len(data)
        stored = s3_client.get_object(
            Bucket="dubs", Key=f"tenants/{tenant_id}/uploads/{direct['id']}/reel1.mov")
        assert stored["Body"].read() == data
        # Fewer bytes than announced: discarded, with a clear error.
        short = client.post("/v1/uploads/direct", headers=auth,
                            json={"filename": "x.mp4", "size_bytes": 1000}).json()
        bad = client.post(f"/v1/uploads/{short['id']}/complete", headers=auth,
                          json={"etags": _put_parts(short, b"y" * 900)})
        assert bad.status_code == 400 and "not the 1000 announced" in bad.json()["detail"]
        # Abort; oversize refused before any S3 call.
        gone = client.post("/v1/uploads/direct", headers=auth,
                           json={"filename": "y.mp4", "size_bytes": 10}).json()
        assert client.post(f"/v1/uploads/{gone['id']}/abort", headers=auth).status_code == 204
        assert client.post(f"/v1/uploads/{gone['id']}/complete", headers=auth,
                           json={"etags": ["x"]}).status_code == 404
        assert client.post("/v1/uploads/direct", headers=auth, json={
            "filename": "huge.mov", "size_bytes": 65 * 1024**2}).status_code == 413
        # A real clip uploaded directly dubs like any other upload.
        clip = talking_clip.read_bytes()
        video = client.post("/v1/uploads/direct", headers=auth,
                            json={"filename": "clip.mp4", "size_bytes": len(clip)}).json()
        client.post(f"/v1/uploads/{video['id']}/complete", headers=auth,
                    json={"etags": _put_parts(video, clip)})
        job = client.post("/v1/jobs", headers=auth, json={
            "video": video["id"], "audio": _upload(client, auth, short_voice),
            "options": {"engine": "warp"}}).json()
        assert _wait(client, auth, job["id"])["state"] == "succeeded"
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket="dubs").get("Contents", [])]
    assert not any("x.mp4" in k or "y.mp4" in k for k in keys)


def test_direct_uploads_need_s3(tmp_path: Path) -> None:
    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    with TestClient(create_app(settings, run_jobs=False)) as client:
        r = client.post("/v1/uploads/direct", headers={"X-API-Key": key},
                        json={"filename": "a.mp4", "size_bytes": 10})
    assert r.status_code == 400 and "need S3 storage" in r.json()["detail"]
