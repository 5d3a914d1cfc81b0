"""The Alembic migrations build exactly the schema the SQLAlchemy models describe, on SQLite
and on PostgreSQL (a model change without its migration fails here)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from lipdub.db.models import Base
from lipdub.db.session import engine_for, upgrade
from tests.test_platform_api import _drop_postgres, _postgres_url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_match_the_models(backend: str, tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'm.db'}" if backend == "sqlite" else _postgres_url()
    try:
        upgrade(url)
        with engine_for(url).connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert diff == []
    finally:
        if backend == "postgresql":
            _drop_postgres(url)
