"""Schema drift against the simulator: a clear diff before any row is read."""

import pytest

from extractors import check_schema
from tests.extractors.conftest import NUMBERS, entity_spec, source_spec

pytestmark = pytest.mark.simulator


@pytest.mark.parametrize("driver", ["pymssql", "pyodbc"])
def test_matching_spec_has_no_drift(driver, demo_endpoint):
    drift = check_schema(source_spec(driver), entity_spec("numbers", NUMBERS, ["id"]), demo_endpoint)
    assert drift.differences == [] and drift.new_columns == []


@pytest.mark.parametrize("driver", ["pymssql", "pyodbc"])
def test_missing_column_and_wrong_type_are_reported(driver, demo_endpoint):
    spec = entity_spec("numbers", [("id", "int"), ("name", "datetime"), ("gone", "int")], ["id"])
    drift = check_schema(source_spec(driver), spec, demo_endpoint)
    assert drift.differences[0].startswith("name: spec datetime, source")
    assert drift.differences[1] == "gone: in the spec (int), missing in the source"
    assert drift.new_columns == ["big", "amount", "ts", "f"]
    assert "dbo.numbers: source differs from the city spec" in str(drift)


def test_pyodbc_sees_changed_scale_and_length(demo_endpoint):
    spec = entity_spec(
        "numbers", [("id", "int"), ("name", "varchar(30)"), ("amount", "decimal(14,4)")], ["id"]
    )
    drift = check_schema(source_spec("pyodbc"), spec, demo_endpoint)
    assert drift.differences == [
        "name: spec varchar(30), source length 40",
        "amount: spec decimal(14,4), source decimal(14,2)",
    ]


def test_a_missing_table_is_drift_not_a_crash(demo_endpoint):
    drift = check_schema(
        source_spec("pymssql"), entity_spec("nowhere", [("id", "int")], ["id"]), demo_endpoint
    )
    assert drift.differences[0].startswith("table cannot be read")
