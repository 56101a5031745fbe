"""Four cities loaded together, in any order, twice, on both engines: the consolidated province
equals the generator's provincial ground truth (one person, one record)."""

from __future__ import annotations

import contextlib

import duckdb
import pytest

from extractors import SourceEndpoint
from jinbao.runner import run_city
from jinbao.spec import city_spec
from jinbao.targets import open_target
from tests.truth import ENTITIES, assert_entity_matches, assert_quarantine_matches, target_rows
from transforms.normalize import money_columns

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
ORDER = ["harbin", "qiqihar", "mudanjiang", "daqing"]


@pytest.fixture(scope="module")
def province(tmp_path_factory):
    from fixtures.generator import generate_province

    return generate_province(tmp_path_factory.mktemp("province"), persons=1500, seed=5)


@pytest.fixture(scope="module")
def servers(province):
    from fixtures.tds import TdsServer

    with contextlib.ExitStack() as stack:
        yield {city: stack.enter_context(TdsServer(gen.path)) for city, gen in province.cities.items()}


def _load_all(target, servers, order, checker):
    runs = []
    for city in order:
        spec = city_spec(city)
        ep = SourceEndpoint("127.0.0.1", servers[city].port, "etl", "province-pw", spec.source.database)
        runs.append(run_city(spec, ep, target, checker=checker))
    return runs


@pytest.mark.parametrize(
    ("engine", "order"),
    [
        ("duckdb", ORDER),
        ("duckdb", ORDER[::-1]),
        pytest.param("postgres", ["mudanjiang", "harbin", "daqing", "qiqihar"], marks=pytest.mark.postgres),
    ],
)
def test_four_cities_consolidate_to_the_provincial_truth(
    engine, order, province, servers, checker, tmp_path, pg_database_factory
):
    url = f"duckdb:///{tmp_path / 'p.duckdb'}" if engine == "duckdb" else pg_database_factory()
    with open_target(url) as target:
        first = _load_all(target, servers, order, checker)
        snapshot = {t: target_rows(target, t, ["*"]) for t in [*ENTITIES, "quarantine"]}
        second = _load_all(target, servers, order, checker)
        assert {t: target_rows(target, t, ["*"]) for t in [*ENTITIES, "quarantine"]} == snapshot
        assert all(r.reconciled for r in first + second)

        truth = province.truth_path
        for entity in ENTITIES:
            assert_entity_matches(target, truth, entity)
        assert_quarantine_matches(target, truth)

        money = ", ".join(f"sum({m})" for m in money_columns("contribution"))
        q = f"SELECT insurance_type, fee_period, count(*), {money} FROM province.contribution GROUP BY 1, 2"
        with duckdb.connect(str(truth), read_only=True) as con:
            want = sorted(con.execute(q.replace("province.", "truth.")).fetchall())
            doubles = sorted(
                con.execute(
                    "SELECT id_number, insurance_type, fee_period FROM truth.double_payments"
                ).fetchall()
            )
        assert sorted(tuple(r) for r in target.fetchall(q)) == want
        got_doubles = target.fetchall(
            "SELECT id_number, insurance_type, fee_period FROM province.contribution "
            "GROUP BY 1, 2, 3 HAVING count(DISTINCT source_city) > 1"
        )
        assert sorted(tuple(r) for r in got_doubles) == doubles

        # one employer, one record: shared employers merged by organization code (a USCC embeds it), the
        # conflicting names reported; exact rows were compared above (employer, employer_xref)
        with duckdb.connect(str(truth), read_only=True) as con:
            shared_employers, conflicts = con.execute(
                "SELECT count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE names > 1 OR types > 1 OR usccs > 1) "
                "FROM (SELECT employer_id, count(*) AS n, count(DISTINCT name) AS names, count(DISTINCT "
                "employer_type) AS types, count(DISTINCT uscc) AS usccs FROM truth.employer_xref GROUP BY 1)"
            ).fetchone()
        assert (
            target.fetchall(
                "SELECT count(*) FROM (SELECT employer_id FROM province.employer_xref GROUP BY 1 "
                "HAVING count(*) > 1) x"
            )[0][0]
            == shared_employers
            > 0
        )
        assert target.consolidation_counts()["employer_conflicts"] == conflicts > 0
        shared = target.fetchall(
            "SELECT count(*) FROM (SELECT id_number FROM province.person_xref GROUP BY 1 HAVING count(*) > 1) x"
        )[0][0]
        persons = target.fetchall("SELECT count(*) FROM province.person")[0][0]
        assert 0.10 <= shared / persons <= 0.15
        # every production person sits in exactly one business partition
        assert target.fetchall("SELECT count(*) - count(DISTINCT id_number) FROM province.person")[0][0] == 0


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_rolling_back_a_city_restores_the_province_without_it(
    engine, province, servers, checker, tmp_path, pg_database_factory
):
    from jinbao.cutover import run_step

    def url(name):
        return f"duckdb:///{tmp_path / name}.duckdb" if engine == "duckdb" else pg_database_factory()

    q_cols = [
        "scope",
        "source_city",
        "entity",
        "source_key",
        "reason_code",
        "reason_detail",
        "original_values",
    ]

    def state(t):  # everything but batch ids, which differ between any two runs
        return {
            **{e: target_rows(t, e, ["*"]) for e in ENTITIES},
            "quarantine": target_rows(t, "quarantine", q_cols),
        }

    with open_target(url("without")) as without:
        _load_all(without, servers, ["harbin", "daqing"], checker)
        expected = state(without)
    with open_target(url("with")) as target:
        _load_all(target, servers, ["harbin", "daqing"], checker)
        spec = city_spec("qiqihar")
        ep = SourceEndpoint("127.0.0.1", servers["qiqihar"].port, "etl", "pw", spec.source.database)
        reports = tmp_path / "reports"
        assert run_step("rehearse", spec, ep, target, reports, checker=checker).passed
        assert run_step("execute", spec, ep, target, reports, checker=checker).passed
        shared = target.fetchall(
            "SELECT count(DISTINCT id_number) FROM province.person_xref WHERE source_city = 'qiqihar' AND id_number IN "
            "(SELECT id_number FROM province.person_xref WHERE source_city <> 'qiqihar')"
        )[0][0]
        assert shared > 0  # qiqihar shares persons with harbin and daqing
        shared = target.fetchall(
            "SELECT count(DISTINCT employer_id) FROM province.employer_xref WHERE source_city = 'qiqihar' AND employer_id "
            "IN (SELECT employer_id FROM province.employer_xref WHERE source_city <> 'qiqihar')"
        )[0][0]
        assert shared > 0  # ... and employers
        assert run_step("rollback", spec, ep, target, reports, checker=checker).passed
        assert state(target) == expected
