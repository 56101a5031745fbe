"""Targets to run loader tests against: DuckDB always, PostgreSQL in a throwaway database."""

from __future__ import annotations

import uuid

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url():
    import psycopg

    name = f"jinbao_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:  # CI starts PostgreSQL; a missing server is a failure, not a skip
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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
