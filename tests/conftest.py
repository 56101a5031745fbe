"""Shared fixtures: generated cities served by the TDS simulator on free loopback ports.

harbin is Sybase ASE 15 over TDS 5.0 (cp936; pymssql); daqing is SQL Server over TDS 7.4, the city for the
drivers that read SQL Server only (pyodbc, arrow_odbc).
"""

from __future__ import annotations

import pytest

E2E_PERSONS = 1200
E2E_SEED = 20261203


@pytest.fixture(scope="session")
def harbin_db(tmp_path_factory):
    from fixtures.generator import generate_city

    path = tmp_path_factory.mktemp("sim") / "harbin.duckdb"
    generate_city("harbin", path, persons=E2E_PERSONS, seed=E2E_SEED)
    return path


@pytest.fixture(scope="session")
def harbin_server(harbin_db):
    from fixtures.tds import TdsServer

    with TdsServer(harbin_db, server_name="SIM_HARBIN") as server:
        yield server


@pytest.fixture(scope="session")
def harbin_endpoint(harbin_server):
    from extractors import SourceEndpoint

    return SourceEndpoint("127.0.0.1", harbin_server.port, "jinbao", "sim-password", "hrb_si")


@pytest.fixture(scope="session")
def daqing_db(tmp_path_factory):
    from fixtures.generator import generate_city

    path = tmp_path_factory.mktemp("sim") / "daqing.duckdb"
    generate_city("daqing", path, persons=E2E_PERSONS, seed=E2E_SEED)
    return path


@pytest.fixture(scope="session")
def daqing_server(daqing_db):
    from fixtures.tds import TdsServer

    with TdsServer(daqing_db, server_name="SIM_DAQING") as server:
        yield server


@pytest.fixture(scope="session")
def daqing_endpoint(daqing_server):
    from extractors import SourceEndpoint

    return SourceEndpoint("127.0.0.1", daqing_server.port, "jinbao", "sim-password", "dq_si")


@pytest.fixture(scope="session")
def checker():
    from quality.checks import BatchChecker, PageChecker

    # what loads use, with Great Expectations cross-checking a sample of every page in process
    return PageChecker(gx=BatchChecker())


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_database_factory():
    """Throwaway PostgreSQL databases, dropped at the end of the session."""
    import uuid

    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:  # CI starts PostgreSQL; a missing server is a failure, not a skip
        pytest.fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    made = []

    def make() -> str:
        name = f"jinbao_test_{uuid.uuid4().hex[:10]}"
        admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"postgresql://postgres@127.0.0.1:5432/{name}"

    yield make
    for name in made:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
