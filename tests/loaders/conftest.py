"""Targets to run loader tests against: DuckDB always, PostgreSQL in a throwaway database."""

from __future__ import annotations

import pytest


@pytest.fixture
def pg_url(pg_database_factory):
    return pg_database_factory()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def target(request, tmp_path):
    from jinbao.targets import open_target

    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'province.duckdb'}"
    else:
        url = request.getfixturevalue("pg_url")
    t = open_target(url)
    t.ensure_schema()
    yield t
    t.close()
