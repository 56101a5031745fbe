"""Cutovers as a migration lead runs them: order enforced, rehearsal isolated, rollback exact."""

from __future__ import annotations

import pytest

from jinbao.cutover import CutoverOrderError, run_step
from jinbao.spec import city_spec
from jinbao.targets import open_target
from tests.truth import assert_entity_matches, target_rows

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
TARGETS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=TARGETS)
def target(request, tmp_path, pg_database_factory):
    url = f"duckdb:///{tmp_path / 'p.duckdb'}" if request.param == "duckdb" else pg_database_factory()
    t = open_target(url)
    yield t
    t.close()


def test_cutover_runs_in_order_and_rollback_restores_the_previous_state(target, harbin_endpoint, harbin_db,
                                                                          checker, tmp_path):
    spec = city_spec("harbin")
    reports = tmp_path / "reports"

    def step(name, **kw):
        return run_step(name, spec, harbin_endpoint, target, reports, checker=checker, **kw)

    with pytest.raises(CutoverOrderError, match="run --rehearse first"):
        step("execute")
    with pytest.raises(CutoverOrderError, match="not executed"):
        step("rollback")

    rehearsal = step("rehearse")
    assert rehearsal.passed and rehearsal.report.exists()
    # the rehearsal sits in the test partition only
    assert target.fetchall("SELECT DISTINCT partition_code FROM province.contribution") == [("T",)]
    target.scope = "T"
    assert_entity_matches(target, harbin_db, "contribution")
    target.scope = "P"

    executed = step("execute")
    assert executed.passed
    codes = {r[0] for r in target.fetchall("SELECT DISTINCT partition_code FROM province.person")}
    assert "T" not in codes and "1" in codes  # harbin enterprise employees land in partition 1
    assert_entity_matches(target, harbin_db, "person")
    assert_entity_matches(target, harbin_db, "contribution")

    verified = step("verify")
    assert verified.passed
    assert verified.detail["entities"]["contribution"]["matches"]

    with pytest.raises(CutoverOrderError, match="run --rehearse first"):
        step("execute")  # a second execute needs a new rehearsal

    rolled = step("rollback")
    assert rolled.passed
    assert rolled.detail["removed"]["contribution"] == executed.run.entities["contribution"].loaded_rows
    for table in ("person", "person_xref", "employer", "enrolment", "contribution", "account", "quarantine"):
        assert target_rows(target, table, ["count(*)"]) == [(0,)], table
    with pytest.raises(CutoverOrderError):
        step("verify")
    log = target.fetchall("SELECT step, status FROM province.cutover_log ORDER BY started_at")
    assert [tuple(r) for r in log] == [("rehearse", "passed"), ("execute", "passed"), ("verify", "passed"),
                                       ("rollback", "passed")]
