"""Tenant isolation, generated from the OpenAPI document: every operation is called without
a key, with malformed keys, with a revoked key, and with another tenant's key naming the
first tenant's ids and object URIs (every field that takes one). A new route that this
table does not cover fails the test, so coverage cannot silently fall behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.models import Identity
from lipdub.db.session import session_factory
from lipdub.jobs.keys import create_key, revoke_key
from lipdub_gateway.app import create_app
from tests.test_platform_api import embedded_database

UNAUTHENTICATED = {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect",
                   "/redoc", "/openapi.json"}
MALFORMED_KEYS = [{"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                  {"Authorization": "Bearer ldk_" + "x" * 43}, {"X-API-Key": "' OR 1=1 --"},
                  {"Authorization": "Bearer " + "k" * 8000}, {"X-API-Key": "ldk_\u00e9".encode()}]


@dataclass
class World:
    """Tenant A's resources, and the keys of A, B and a revoked key of A."""

    client: TestClient
    a: dict
    b: dict
    revoked: dict
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> A's value
    a_objects: list[str] = field(default_factory=list)  # A's inputs, in every spelling
    b_upload: str = ""  # B's own input, for the fields not under test


@pytest.fixture
def world(tmp_path: Path, s3: str) -> World:
    url, tenant_a, key_a = embedded_database(tmp_path)
    with session_factory(url)() as session:
        _, key_b = create_key(session, "studio-b")
        _, key_r = create_key(session, "studio")
        revoke_key(session, key_r[:10])
        session.add(Identity(tenant_id=tenant_a, name="alice", version=1,
                             storage_key=f"tenants/{tenant_a}/identities/alice/v1", info={}))
        session.commit()
    settings = Settings(database_url=url, storage_dir=tmp_path / "unused", s3_bucket="dubs",
                        s3_endpoint_url=s3, auth_cache_s=0)
    client = TestClient(create_app(settings, run_jobs=False))
    client.__enter__()
    a = {"Authorization": f"Bearer {key_a}"}
    upload = client.post("/v1/uploads", headers=a, files={"file": ("reel.mp4", b"frames")})
    assert upload.status_code == 201, upload.text
    upload_id = upload.json()["id"]
    job = client.post("/v1/jobs", headers=a, json={"video": upload_id, "audio": upload_id})
    assert job.status_code == 201, job.text
    batch = client.post("/v1/batches", headers={**a, **JSONL}, content=_manifest(upload_id))
    assert batch.status_code == 201, batch.text
    direct = client.post("/v1/uploads/direct", headers=a,
                         json={"filename": "film.mov", "size_bytes": 10_000_000})
    assert direct.status_code == 201, direct.text
    key = next(o["Key"] for o in boto3.client("s3", endpoint_url=s3).list_objects_v2(
        Bucket="dubs")["Contents"] if upload_id in o["Key"])
    w = World(client, a, {"X-API-Key": key_b}, {"Authorization": f"Bearer {key_r}"},
              {"job_id": job.json()["id"], "upload_id": direct.json()["id"], "name": "alice",
               "batch_id": batch.json()["id"]},
              [upload_id, f"upload:{upload_id}", f"s3://dubs/{key}",
               f"s3://dubs/tenants/{tenant_a}/uploads/{upload_id}/../{upload_id}/reel.mp4",
               f"s3://dubs/tenants/{tenant_a}/nothing-here.mp4"])
    w.b_upload = client.post("/v1/uploads", headers=w.b,
                             files={"file": ("b.mp4", b"b")}).json()["id"]
    yield w
    client.__exit__(None, None, None)


def _jobs_body(video: str) -> dict:
    return {"video": video, "audio": video}


JSONL = {"Content-Type": "application/jsonl"}


def _manifest(video: str) -> bytes:
    return json.dumps({"video": video, "audio": video}).encode()


def _identity_body(video: str) -> dict:
    return {"name": "mine", "videos": [video]}


# What each operation is sent: a body naming A's objects (None: no body), and how tenant B's
# call must answer: 404 for A's ids in the path, 422 for A's objects in the body, or a check.
@dataclass(frozen=True)
class Call:
    body: Callable[[str], dict] | None = None
    files: dict | None = None
    manifest: Callable[[str], bytes] | None = None  # a batch manifest (JSON Lines)
    as_b: int | Callable[[World, object], None] = 404


def _sees_none_of_a(w: World, response) -> None:  # noqa: ANN001 - httpx.Response
    assert response.status_code == 200
    text = response.text
    assert w.ids["job_id"] not in text and "alice" not in text


def _own_upload(w: World, response) -> None:  # noqa: ANN001
    assert response.status_code == 201  # B's own file, naming nothing of A's


OPERATIONS: dict[tuple[str, str], Call] = {
    ("post", "/v1/jobs"): Call(body=_jobs_body, as_b=422),
    ("get", "/v1/jobs"): Call(as_b=_sees_none_of_a),
    ("get", "/v1/jobs/{job_id}"): Call(),
    ("post", "/v1/jobs/{job_id}/cancel"): Call(),
    ("get", "/v1/jobs/{job_id}/result"): Call(),
    ("get", "/v1/jobs/{job_id}/webhooks"): Call(),
    ("get", "/v1/jobs/{job_id}/qc"): Call(),
    ("get", "/v1/jobs/{job_id}/review"): Call(),
    ("post", "/v1/jobs/{job_id}/reviews"): Call(body=lambda _: {"shot": 0,
                                                                "decision": "approved"}),
    ("post", "/v1/jobs/{job_id}/versions"): Call(body=lambda _: {"shots": [0]}),
    ("post", "/v1/jobs/{job_id}/webhooks/redeliver"): Call(),
    ("post", "/v1/uploads"): Call(files={"file": ("x.mp4", b"x")}, as_b=_own_upload),
    ("post", "/v1/uploads/direct"): Call(body=lambda _: {"filename": "b.mov",
                                                          "size_bytes": 1000},
                                         as_b=lambda _w, r: None if r.status_code == 201
                                         else pytest.fail(r.text)),
    ("post", "/v1/uploads/{upload_id}/complete"): Call(body=lambda _: {"etags": ["x"]}),
    ("post", "/v1/uploads/{upload_id}/abort"): Call(),
    ("post", "/v1/identities"): Call(body=_identity_body, as_b=422),
    ("get", "/v1/identities"): Call(as_b=_sees_none_of_a),
    ("get", "/v1/identities/{name}"): Call(),
    ("delete", "/v1/identities/{name}"): Call(),
    ("post", "/v1/batches"): Call(manifest=_manifest, as_b=422),
    ("get", "/v1/batches"): Call(as_b=lambda w, r: None if r.status_code == 200 and
                                 w.ids["batch_id"] not in r.text else pytest.fail(r.text)),
    ("get", "/v1/batches/{batch_id}"): Call(),
    ("post", "/v1/batches/{batch_id}/cancel"): Call(),
}


def _operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return sorted((method, path) for path, item in paths.items() for method in item
                  if path not in UNAUTHENTICATED)


def _send(w: World, method: str, path: str, headers: dict, uri: str | None = None):  # noqa: ANN202
    call = OPERATIONS[(method, path)]
    kwargs: dict = {"headers": headers}
    if call.body is not None:
        kwargs["json"] = call.body(uri or w.a_objects[0])
    if call.files is not None:
        kwargs["files"] = call.files
    if call.manifest is not None:
        kwargs["content"] = call.manifest(uri or w.a_objects[0])
        kwargs["headers"] = {**headers, **JSONL}
    return w.client.request(method.upper(), path.format(**w.ids), **kwargs)


def test_every_operation_is_covered(world: World) -> None:
    assert _operations(world.client) == sorted(OPERATIONS)


def test_every_operation_refuses_missing_malformed_and_revoked_keys(world: World) -> None:
    for method, path in _operations(world.client):
        for headers in [{}, *MALFORMED_KEYS, world.revoked]:
            r = _send(world, method, path, headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["code"] == "unauthorized"


def test_another_tenant_cannot_reach_a_single_resource(world: World) -> None:
    for method, path in _operations(world.client):
        expected = OPERATIONS[(method, path)].as_b
        r = _send(world, method, path, world.b)
        if callable(expected):
            expected(world, r)
        else:
            assert r.status_code == expected, (method, path, r.text)
    # A's resources are all still there, unchanged, for A.
    assert world.client.get(f"/v1/jobs/{world.ids['job_id']}",
                            headers=world.a).json()["state"] == "queued"
    assert world.client.get("/v1/identities/alice", headers=world.a).status_code == 200


@pytest.mark.parametrize("field", ["video", "audio", "videos"])
def test_object_uris_of_another_tenant_answer_like_missing_ones(world: World,
                                                                field: str) -> None:
    """Every spelling of A's inputs, in every field that takes one: the same 422 as an
    object that does not exist, so B learns nothing about what A has stored."""
    answers = set()
    for uri in [*world.a_objects, "s3://dubs/tenants/nobody/x.mp4", "s3://other-bucket/x.mp4",
                "0123456789abcdef0123456789abcdef"]:
        if field == "videos":
            r = world.client.post("/v1/identities", headers=world.b, json=_identity_body(uri))
        else:
            body = {"video": world.b_upload, "audio": world.b_upload, field: uri}
            r = world.client.post("/v1/jobs", headers=world.b, json=body)
        assert r.status_code == 422, (uri, r.text)
        answers.add((r.json()["code"], r.json()["detail"].replace(uri, "URI")))
    assert len(answers) == 1, answers
    # The owner may name its own object by URI.
    own = world.client.post("/v1/jobs", headers=world.a,
                            json=_jobs_body(world.a_objects[2]))
    assert own.status_code == 201, own.text
