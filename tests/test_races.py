"""Concurrent requests against the rules that need atomicity, through a real HTTP server,
on SQLite and on PostgreSQL: a tenant's in-flight limit, and the Idempotency-Key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from lipdub.config import Settings
from lipdub.db.models import Job
from lipdub.db.session import session_factory, upgrade
from lipdub.jobs.keys import create_key
from tests.live_gateway import live_gateway
from tests.test_platform_api import _drop_postgres, _postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(database URL, an API key of tenant "studio")."""
    url = (f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite"
           else _postgres_url())
    upgrade(url)
    with session_factory(url)() as session:
        _, key = create_key(session, "studio")
    yield url, key
    if request.param == "postgresql":
        _drop_postgres(url)


def _settings(url: str, tmp_path: Path, limit: int) -> Settings:
    return Settings(database_url=url, storage_dir=tmp_path / "store", max_jobs_in_flight=limit,
                    s3_input_grants={"studio": ["footage"]})


def _post_all(base: str, requests: list[tuple[dict, dict]]) -> list[httpx.Response]:
    """Every request at once, each on its own connection."""
    def post(request: tuple[dict, dict]) -> httpx.Response:
        headers, body = request
        return httpx.post(f"{base}/v1/jobs", headers=headers, json=body, timeout=60)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(post, requests))


def _jobs(url: str) -> int:
    with session_factory(url)() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_concurrent_submissions_never_pass_the_in_flight_limit(database, tmp_path: Path,
                                                               ) -> None:  # noqa: ANN001
    url, key = database
    auth = {"Authorization": f"Bearer {key}"}
    requests = [(auth, {"video": f"s3://footage/reel{n}.mp4", "audio": "s3://footage/fr.wav"})
                for n in range(40)]
    with live_gateway(_settings(url, tmp_path, limit=20)) as base:  # jobs stay queued
        responses = _post_all(base, requests)
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 20, 429: 20}, [r.text for r in responses if r.status_code >= 500]
    assert _jobs(url) == 20


def test_concurrent_replays_of_one_idempotency_key_make_one_job(database, tmp_path: Path,
                                                                ) -> None:  # noqa: ANN001
    url, key = database
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "ep1-fr"}
    body = {"video": "s3://footage/ep1.mp4", "audio": "s3://footage/ep1-fr.wav"}
    with live_gateway(_settings(url, tmp_path, limit=20)) as base:
        responses = _post_all(base, [(headers, body)] * 20)
        conflict = httpx.post(f"{base}/v1/jobs", headers=headers,
                              json={**body, "audio": "s3://footage/ep1-de.wav"})
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 200: 19}, [r.text for r in responses if r.status_code >= 500]
    assert len({r.json()["id"] for r in responses}) == 1 and _jobs(url) == 1
    assert conflict.status_code == 409
