"""A demo city with every legacy type and a numbers table, served over TDS for extractor tests."""

from __future__ import annotations

import pytest

from extractors import SourceEndpoint
from jinbao.spec import EntitySpec, SourceSpec

NUMBERS_ROWS = 30_000
# the demo city's dbo.numbers table as a spec declares it: (column, legacy type)
NUMBERS = [
    ("id", "int"),
    ("big", "bigint"),
    ("name", "varchar(40)"),
    ("amount", "decimal(14,2)"),
    ("ts", "datetime"),
    ("f", "float"),
]


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    from fixtures.tds.demo import build_demo_database

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    build_demo_database(path, numbers_rows=NUMBERS_ROWS)
    return path


@pytest.fixture(scope="session")
def demo_server(demo_db):
    from fixtures.tds import TdsServer

    with TdsServer(demo_db) as server:
        yield server


@pytest.fixture(scope="session")
def demo_endpoint(demo_server):
    return SourceEndpoint("127.0.0.1", demo_server.port, "sa", "extract-test-pw", "demo")


def source_spec(driver: str, **kw) -> SourceSpec:
    return SourceSpec.model_validate(
        {
            "dialect": "mssql",
            "driver": driver,
            "tds_version": "7.4",
            "database": "demo",
            "charset": {"declared": "cp936", "actual": "gb18030"},
            "conn_id": "x",
            "env_prefix": "DEMO",
            **kw,
        }
    )


def entity_spec(table: str, columns: list[tuple[str, str]], key: list[str]) -> EntitySpec:
    return EntitySpec.model_validate(
        {"table": f"dbo.{table}", "key": key, "columns": {name: {"type": legacy} for name, legacy in columns}}
    )
