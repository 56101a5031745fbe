"""Partition 4, retirees: a person a city's record says has retired is placed there, with all their rows,
and a person who retires between two loads moves there (change feed, incremental load, both engines)."""

from __future__ import annotations

import duckdb
import pytest

from extractors import SourceEndpoint
from jinbao.runner import run_city
from jinbao.spec import city_spec
from jinbao.targets import open_target
from tests.truth import ENTITIES, assert_entity_matches

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
CITIES = ("harbin", "qiqihar")

# config/partitions.yml's default rules restated over the truth, first match wins: 4 a record says retired
# (only Qiqihar's working/retired status does); 3 government pension or an institution or organ employer;
# 5 an individual business; 1 a person whose consolidated record is Harbin's; 2 everyone else.
EXPECTED_PARTITION = """
SELECT p.id_number, CASE
  WHEN EXISTS (SELECT 1 FROM truth.enrolment e WHERE e.id_number = p.id_number AND e.retired = '1') THEN '4'
  WHEN EXISTS (SELECT 1 FROM truth.enrolment e WHERE e.id_number = p.id_number AND (e.insurance_type = '120'
       OR e.employer_no IN (SELECT employer_no FROM truth.employer_xref m WHERE m.source_city = e.source_city
                            AND m.employer_type IN ('20', '21', '22', '23', '30')))) THEN '3'
  WHEN EXISTS (SELECT 1 FROM truth.enrolment e WHERE e.id_number = p.id_number
       AND e.employer_no IN (SELECT employer_no FROM truth.employer_xref m WHERE m.source_city = e.source_city
                             AND m.employer_type = '60')) THEN '5'
  WHEN p.source_city = 'harbin' THEN '1'
  ELSE '2' END
FROM truth.person p
"""


def expected_partitions(truth) -> dict[str, str]:
    with duckdb.connect(str(truth), read_only=True) as con:
        return dict(con.execute(EXPECTED_PARTITION).fetchall())


def assert_rows_follow_their_person(target) -> None:
    for table in ("enrolment", "contribution", "account"):
        stray = target.fetchall(
            f"SELECT count(*) FROM province.{table} r JOIN province.person p USING (id_number) "
            "WHERE r.partition_code <> p.partition_code"
        )[0][0]
        assert stray == 0, table


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_person_who_retires_between_loads_moves_to_partition_4_with_all_their_rows(
    engine, tmp_path, checker, pg_database_factory
):
    from fixtures.generator import advance, generate_province
    from fixtures.tds import TdsServer

    province = generate_province(tmp_path / "province", persons=1200, seed=8, cities=CITIES)
    url = f"duckdb:///{tmp_path / 'p.duckdb'}" if engine == "duckdb" else pg_database_factory()

    def load(target, city, mode="full"):
        spec = city_spec(city)
        with TdsServer(province.cities[city].path) as server:
            ep = SourceEndpoint("127.0.0.1", server.port, "etl", "pw", spec.source.database)
            run = run_city(spec, ep, target, checker=checker, mode=mode)
        assert run.reconciled
        return run

    with open_target(url) as target:
        for city in CITIES:
            load(target, city)
        before = expected_partitions(province.truth_path)
        got = dict(target.fetchall("SELECT id_number, partition_code FROM province.person"))
        assert got == before
        retirees = {k for k, v in before.items() if v == "4"}
        with duckdb.connect(str(province.truth_path), read_only=True) as con:
            retired_in_qiqihar = {
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT id_number FROM truth.enrolment WHERE source_city = 'qiqihar' AND retired = '1'"
                ).fetchall()
            }
        assert retirees == retired_in_qiqihar and len(retirees) > 50  # Qiqihar's 2 and 3 (retired) only
        assert_rows_follow_their_person(target)

        report = advance(province.cities["qiqihar"].path, days=2, seed=4, province_truth=province.truth_path)
        after = expected_partitions(province.truth_path)
        with duckdb.connect(str(province.cities["qiqihar"].path), read_only=True) as con:
            moved = {
                r[0]
                for r in con.execute(
                    "SELECT id_number FROM truth.person WHERE source_person_no IN (SELECT unnest(?::VARCHAR[]))",
                    [report.retired],
                ).fetchall()
            }
        assert report.retired and len(moved) == len(report.retired)
        assert {before[i] for i in moved} <= {"1", "2", "3", "5"} and {after[i] for i in moved} == {"4"}
        # nobody else changes partition but a person who registered in Qiqihar these days (moved in)
        assert moved <= {i for i in before if after[i] != before[i]} <= moved | set(report.moved_in)

        run = load(target, "qiqihar", mode="incremental")
        assert run.partition_moves >= len(moved)
        got = dict(target.fetchall("SELECT id_number, partition_code FROM province.person"))
        assert got == after
        assert_rows_follow_their_person(target)
        for table in ("enrolment", "contribution", "account"):  # every row of theirs went with them
            rows = target.fetchall(
                f"SELECT partition_code, count(*) FROM province.{table} WHERE id_number IN "
                f"({', '.join(repr(i) for i in sorted(moved))}) GROUP BY 1"
            )
            with duckdb.connect(str(province.truth_path), read_only=True) as con:
                want = con.execute(
                    f"SELECT count(*) FROM truth.{table} WHERE id_number IN "
                    f"({', '.join(repr(i) for i in sorted(moved))})"
                ).fetchone()[0]
            assert [tuple(r) for r in rows] == ([("4", want)] if want else []), table
        for entity in ENTITIES:
            assert_entity_matches(target, province.truth_path, entity)
        if engine == "postgres":  # the rows really sit in partition 4's tables
            n = target.fetchall(
                "SELECT count(*) FROM province.person_p4 WHERE id_number IN "
                f"({', '.join(repr(i) for i in sorted(moved))})"
            )[0][0]
            assert n == len(moved)
