"""Schemathesis against the running gateway (uvicorn on loopback, embedded defaults):
generated requests for every documented operation, valid and invalid (schemathesis's
positive and negative modes), with a valid key. No answer may be a 5xx, and every answer
must match what the OpenAPI document says (status code, content type, headers, body
schema). Examples per operation and mode are bounded (LIPDUB_FUZZ_EXAMPLES, default 25;
the reliability suite runs more)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lipdub.config import Settings
from tests.live_gateway import live_gateway
from tests.test_platform_api import embedded_database

EXAMPLES = int(os.environ.get("LIPDUB_FUZZ_EXAMPLES", "25"))
# The ordinary test command replays the same examples every run (a red CI means a change
# broke something); the reliability suite explores new ones (LIPDUB_FUZZ_RANDOM=1).
RANDOM = os.environ.get("LIPDUB_FUZZ_RANDOM") == "1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    url, _, key = embedded_database(folder)
    settings = Settings(database_url=url, storage_dir=folder / "store",
                        max_upload_bytes=1_000_000, max_jobs_in_flight=1000)
    with live_gateway(settings) as base:  # jobs are accepted but none runs
        yield base, key


def test_no_5xx_and_every_answer_as_documented(gateway: tuple[str, str]) -> None:
    """Each operation in turn (schemathesis's lazy pytest loader does not run under this
    pytest, so the operations are walked here; hypothesis drives each one)."""
    base, key = gateway
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15

    for operation, mode in itertools.product(operations, GenerationMode):
        @given(case=operation.as_strategy(mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  derandomize=not RANDOM, suppress_health_check=list(HealthCheck))
        def call(case) -> None:  # noqa: ANN001 - a schemathesis Case
            case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {key}"},
                                   checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Nothing about this operation can be got wrong (no parameters, no body).
            assert mode is GenerationMode.NEGATIVE, operation.label
