"""The pipeline end to end: simulated cities over TDS, through FreeTDS, into DuckDB and PostgreSQL,
compared with the generator's ground truth.

harbin (Sybase ASE 15 over TDS 5.0, cp936 with private-use name characters) loads through pymssql; the drivers
that read SQL Server only (pyodbc, arrow_odbc) load daqing (SQL Server over TDS 7.4), where pymssql loads too,
so all three drivers are compared on the same city.
"""

from __future__ import annotations

import pytest

from jinbao.demo import with_driver
from jinbao.runner import run_city
from jinbao.spec import SourceSpec, city_spec
from jinbao.targets import open_target
from tests.truth import ENTITIES, assert_entity_matches, assert_quarantine_matches, target_rows
from transforms.normalize import money_columns

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
LOADS = [
    "harbin-pymssql-duckdb",
    "daqing-pymssql-duckdb",
    "daqing-pyodbc-duckdb",
    "daqing-arrow_odbc-duckdb",
    pytest.param("harbin-pymssql-postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="module")
def cities(request):
    """city -> (endpoint, legacy database with its truth); a city's server starts when a load first needs it."""

    def get(city: str):
        return request.getfixturevalue(f"{city}_endpoint"), request.getfixturevalue(f"{city}_db")

    return get


@pytest.fixture(scope="module")
def loads(tmp_path_factory, cities, checker, pg_database_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            city, driver, engine = name.split("-")
            url = (
                f"duckdb:///{tmp_path_factory.mktemp(name) / 'target.duckdb'}"
                if engine == "duckdb"
                else pg_database_factory()
            )
            target = open_target(url)
            endpoint, db = cities(city)
            run = run_city(with_driver(city_spec(city), driver), endpoint, target, checker=checker)
            cache[name] = (run, target, db)
        return cache[name]

    yield get
    for _, target, _ in cache.values():
        target.close()


def test_harbin_is_read_by_pymssql_over_tds50_and_daqing_over_tds74():
    harbin, daqing = city_spec("harbin").source, city_spec("daqing").source
    assert (harbin.dialect, harbin.tds_version, harbin.driver) == ("sybase", "5.0", "pymssql")
    assert (daqing.dialect, daqing.tds_version) == ("mssql", "7.4")
    with pytest.raises(ValueError, match="arrow_odbc reads SQL Server sources"):
        SourceSpec.model_validate({**harbin.model_dump(), "driver": "arrow_odbc"})


@pytest.mark.parametrize("load", LOADS)
def test_every_entity_and_quarantine_row_matches_the_ground_truth(loads, load):
    import duckdb

    run, target, db = loads(load)
    for entity in ENTITIES:
        assert_entity_matches(target, db, entity)
    assert_quarantine_matches(target, db)
    assert run.reconciled
    reasons = {r[0] for r in target.fetchall("SELECT DISTINCT reason_code FROM province.quarantine")}
    with duckdb.connect(str(db), read_only=True) as con:
        expected = {r[0] for r in con.execute("SELECT DISTINCT reason_code FROM truth.quarantine").fetchall()}
    assert reasons == expected
    assert {"ID_CHECK_DIGIT", "PERSON_NOT_LOADED", "UNMAPPED_CODE"} <= reasons
    if load.startswith("harbin"):
        assert {"ID_BIRTH_DATE_MISMATCH", "AMOUNT_INVALID"} <= reasons
        assert (
            "UNDECODABLE_TEXT" not in reasons
        )  # harbin's private-use characters decode: nothing to quarantine
        names = [r[0] for r in target.fetchall("SELECT name FROM province.person")]
        assert any("\ue000" <= ch <= "\uf8ff" for n in names for ch in n)
        assert not any("?" in n for n in names)


@pytest.mark.parametrize("load", LOADS)
def test_money_totals_per_insurance_type_and_month_equal_the_truth(loads, load):
    import duckdb

    _, target, db = loads(load)
    money = money_columns("contribution")
    sums = ", ".join(f"sum({m})" for m in money)
    q = f"SELECT insurance_type, fee_period, count(*), {sums} FROM province.contribution GROUP BY 1, 2"
    got = sorted(target.fetchall(q))
    with duckdb.connect(str(db), read_only=True) as con:
        want = sorted(con.execute(q.replace("province.", "truth.")).fetchall())
    assert [tuple(r) for r in got] == [tuple(r) for r in want]


@pytest.mark.parametrize("load", LOADS)
def test_a_second_run_changes_nothing(loads, load, cities, checker):
    run, target, _ = loads(load)
    tables = [*ENTITIES, "quarantine"]
    before = {t: target_rows(target, t, ["*"]) for t in tables}
    city, driver, _ = load.split("-")
    endpoint, _ = cities(city)
    again = run_city(with_driver(city_spec(city), driver), endpoint, target, checker=checker)
    assert {t: target_rows(target, t, ["*"]) for t in tables} == before
    assert again.reconciled
    assert all(e.inserted == 0 and e.updated == 0 for e in again.entities.values())
    batches = target.fetchall(
        "SELECT count(DISTINCT batch_id), bool_and(reconciled) FROM province.load_batch"
    )
    assert tuple(batches[0]) == (2, True)


@pytest.mark.parametrize("other", ["daqing-pyodbc-duckdb", "daqing-arrow_odbc-duckdb"])
def test_every_driver_gives_identical_unified_output(loads, other):
    (_, a, _), (_, b, _) = loads("daqing-pymssql-duckdb"), loads(other)
    for t in [*ENTITIES, "quarantine"]:
        cols = (
            ["*"]
            if t != "quarantine"
            else ["source_city", "entity", "source_key", "reason_code", "reason_detail", "original_values"]
        )
        assert target_rows(a, t, cols) == target_rows(b, t, cols), t
