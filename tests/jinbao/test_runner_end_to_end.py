"""The first slice end to end: simulated harbin over TDS, through FreeTDS, into DuckDB, against ground truth."""

from __future__ import annotations

import duckdb
import pytest

from jinbao.demo import with_driver
from jinbao.runner import run_city
from jinbao.spec import city_spec
from loaders import DuckDBTarget
from loaders.schema import ENTITY_TABLES
from transforms.normalize import money_columns

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
ENTITIES = ["employer", "person", "enrolment", "contribution", "account"]


def _load(tmp_path, endpoint, checker, driver, name="target.duckdb"):
    spec = with_driver(city_spec("harbin"), driver)
    path = tmp_path / name
    with DuckDBTarget(path) as target:
        run = run_city(spec, endpoint, target, checker=checker)
    return run, path


@pytest.fixture(scope="module")
def pymssql_load(tmp_path_factory, harbin_endpoint, checker):
    return _load(tmp_path_factory.mktemp("pymssql"), harbin_endpoint, checker, "pymssql")


@pytest.fixture(scope="module")
def pyodbc_load(tmp_path_factory, harbin_endpoint, checker):
    return _load(tmp_path_factory.mktemp("pyodbc"), harbin_endpoint, checker, "pyodbc")


def _attach(path, truth_db):
    con = duckdb.connect(str(path))
    con.execute(f"ATTACH '{truth_db}' AS sim (READ_ONLY)")
    return con


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_entity_matches_the_ground_truth_row_by_row(pymssql_load, harbin_db, entity):
    run, path = pymssql_load
    con = _attach(path, harbin_db)
    cols = ", ".join(c.name for c in ENTITY_TABLES[entity].columns)
    loaded = con.execute(f"SELECT count(*) FROM province.{entity}").fetchone()[0]
    expected = con.execute(f"SELECT count(*) FROM sim.truth.{entity}").fetchone()[0]
    missing = con.execute(f"SELECT {cols} FROM sim.truth.{entity} EXCEPT ALL SELECT {cols} FROM province.{entity}").fetchall()
    extra = con.execute(f"SELECT {cols} FROM province.{entity} EXCEPT ALL SELECT {cols} FROM sim.truth.{entity}").fetchall()
    assert loaded == expected > 0
    assert missing == [] and extra == []
    money = money_columns(entity)
    if money:
        sums = ", ".join(f"sum({m})" for m in money)
        assert con.execute(f"SELECT {sums} FROM province.{entity}").fetchone() == con.execute(
            f"SELECT {sums} FROM sim.truth.{entity}"
        ).fetchone()
    rec = run.entities[entity]
    assert rec.reconciled and rec.loaded_rows == expected


def test_quarantine_holds_exactly_the_expected_rows_and_reasons(pymssql_load, harbin_db):
    run, path = pymssql_load
    con = _attach(path, harbin_db)
    got = con.execute("SELECT source_city, entity, source_key, reason_code FROM province.quarantine ORDER BY ALL").fetchall()
    want = con.execute("SELECT source_city, entity, source_key, reason_code FROM sim.truth.quarantine ORDER BY ALL").fetchall()
    assert got == want
    reasons = {r[3] for r in want}
    assert {"ID_CHECK_DIGIT", "ID_BIRTH_DATE_MISMATCH", "PERSON_NOT_LOADED", "UNMAPPED_CODE"} <= reasons
    assert run.reconciled


def test_a_second_run_changes_nothing(pymssql_load, harbin_endpoint, checker):
    run, path = pymssql_load
    def snapshot():
        with duckdb.connect(str(path)) as con:
            return {t: con.execute(f"SELECT * FROM province.{t} ORDER BY ALL").fetchall() for t in [*ENTITIES, "quarantine"]}
    before = snapshot()
    spec = city_spec("harbin")
    with DuckDBTarget(path) as target:
        again = run_city(spec, harbin_endpoint, target, checker=checker)
    assert snapshot() == before
    assert again.reconciled
    assert all(e.inserted == 0 and e.updated == 0 for e in again.entities.values())
    with duckdb.connect(str(path)) as con:
        batches = con.execute("SELECT count(DISTINCT batch_id), bool_and(reconciled) FROM province.load_batch").fetchone()
    assert batches == (2, True)


def test_pymssql_and_pyodbc_give_identical_unified_output(pymssql_load, pyodbc_load):
    (_, a), (_, b) = pymssql_load, pyodbc_load
    with duckdb.connect(str(a)) as ca, duckdb.connect(str(b)) as cb:
        for t in [*ENTITIES, "quarantine"]:
            cols = "*" if t != "quarantine" else "source_city, entity, source_key, reason_code, reason_detail, original_values"
            assert ca.execute(f"SELECT {cols} FROM province.{t} ORDER BY ALL").fetchall() == cb.execute(
                f"SELECT {cols} FROM province.{t} ORDER BY ALL"
            ).fetchall(), t
