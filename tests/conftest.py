"""Shared fixtures: a generated harbin city, served by the TDS simulator on a free loopback port."""

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
def checker():
    from quality.checks import BatchChecker

    return BatchChecker()
