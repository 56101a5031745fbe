"""The pipeline end to end: simulated harbin over TDS, through FreeTDS, into DuckDB and PostgreSQL,
compared with the generator's ground truth."""

from __future__ import annotations

import pytest

from jinbao.demo import with_driver
from jinbao.runner import run_city
from jinbao.spec import city_spec
from jinbao.targets import open_target
from tests.truth import ENTITIES, assert_entity_matches, assert_quarantine_matches, target_rows
from transforms.normalize import money_columns

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
LOADS = ["pymssql-duckdb", "pyodbc-duckdb", "arrow_odbc-duckdb",
         pytest.param("pymssql-postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def loads(tmp_path_factory, harbin_endpoint, checker, pg_database_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            driver, engine = name.split("-")
            url = (f"duckdb:///{tmp_path_factory.mktemp(name) / 'target.duckdb'}" if engine == "duckdb"
                   else pg_database_factory())
            target = open_target(url)
            run = run_city(with_driver(city_spec("harbin"), driver), harbin_endpoint, target, checker=checker)
            cache[name] = (run, target, url)
        return cache[name]

    yield get
    for _, target, _ in cache.values():
        target.close()


@pytest.mark.parametrize("load", LOADS)
def test_every_entity_and_quarantine_row_matches_the_ground_truth(loads, load, harbin_db):
    run, target, _ = loads(load)
    for entity in ENTITIES:
        assert_entity_matches(target, harbin_db, entity)
    assert_quarantine_matches(target, harbin_db)
    assert run.reconciled
    reasons = {r[0] for r in target.fetchall("SELECT DISTINCT reason_code FROM province.quarantine")}
    assert {"ID_CHECK_DIGIT", "ID_BIRTH_DATE_MISMATCH", "PERSON_NOT_LOADED", "UNMAPPED_CODE", "AMOUNT_INVALID"} <= reasons


@pytest.mark.parametrize("load", LOADS)
def test_money_totals_per_insurance_type_and_month_equal_the_truth(loads, load, harbin_db):
    import duckdb

    _, target, _ = loads(load)
    money = money_columns("contribution")
    sums = ", ".join(f"sum({m})" for m in money)
    q = f"SELECT insurance_type, fee_period, count(*), {sums} FROM province.contribution GROUP BY 1, 2"
    got = sorted(target.fetchall(q))
    with duckdb.connect(str(harbin_db), read_only=True) as con:
        want = sorted(con.execute(q.replace("province.", "truth.")).fetchall())
    assert [tuple(r) for r in got] == [tuple(r) for r in want]


@pytest.mark.parametrize("load", LOADS)
def test_a_second_run_changes_nothing(loads, load, harbin_endpoint, checker):
    run, target, _ = loads(load)
    tables = [*ENTITIES, "quarantine"]
    before = {t: target_rows(target, t, ["*"]) for t in tables}
    spec = with_driver(city_spec("harbin"), load.split("-")[0])
    again = run_city(spec, harbin_endpoint, target, checker=checker)
    assert {t: target_rows(target, t, ["*"]) for t in tables} == before
    assert again.reconciled
    assert all(e.inserted == 0 and e.updated == 0 for e in again.entities.values())
    batches = target.fetchall("SELECT count(DISTINCT batch_id), bool_and(reconciled) FROM province.load_batch")
    assert tuple(batches[0]) == (2, True)


@pytest.mark.parametrize("other", ["pyodbc-duckdb", "arrow_odbc-duckdb"])
def test_every_driver_gives_identical_unified_output(loads, other):
    (_, a, _), (_, b, _) = loads("pymssql-duckdb"), loads(other)
    for t in [*ENTITIES, "quarantine"]:
        cols = ["*"] if t != "quarantine" else ["source_city", "entity", "source_key", "reason_code", "reason_detail",
                                                 "original_values"]
        assert target_rows(a, t, cols) == target_rows(b, t, cols), t
