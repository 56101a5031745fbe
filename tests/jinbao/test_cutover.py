"""Cutovers as a migration lead runs them: order enforced, rehearsal isolated, rollback exact."""

from __future__ import annotations

import re

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
    t.test_url = url
    yield t
    t.close()


def test_cutover_runs_in_order_and_rollback_restores_the_previous_state(
    target, harbin_endpoint, harbin_db, checker, tmp_path
):
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
    # each load report says which step wrote it; "latest" is the production load, the rehearsal keeps its own
    assert "Cutover step <b>rehearse</b>, into the test (T)" in rehearsal.report.read_text(encoding="utf-8")
    assert "Cutover step <b>execute</b>, into the business partitions" in executed.report.read_text(
        encoding="utf-8"
    )
    assert (reports / "latest-harbin.html").read_text(encoding="utf-8") == executed.report.read_text(
        encoding="utf-8"
    )
    assert (reports / "latest-harbin-rehearsal.html").read_text(
        encoding="utf-8"
    ) == rehearsal.report.read_text(encoding="utf-8")
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
    assert [tuple(r) for r in log] == [
        ("rehearse", "passed"),
        ("execute", "passed"),
        ("verify", "passed"),
        ("rollback", "passed"),
    ]


@pytest.fixture
def daqing_db(tmp_path):
    from fixtures.generator import generate_city

    path = tmp_path / "daqing.duckdb"
    generate_city("daqing", path, persons=300, seed=4)
    return path


def test_verify_reports_exactly_the_rows_tampered_with_in_the_province_and_at_the_source(
    target, daqing_db, checker, tmp_path, monkeypatch
):
    import duckdb
    from typer.testing import CliRunner

    from extractors import SourceEndpoint
    from fixtures.tds import TdsServer
    from jinbao.cli import app

    spec = city_spec("daqing")
    reports = tmp_path / "reports"
    with TdsServer(daqing_db) as server:
        ep = SourceEndpoint("127.0.0.1", server.port, "etl", "verify-pw", spec.source.database)
        for name in ("rehearse", "execute", "verify"):
            assert run_step(name, spec, ep, target, reports, checker=checker).passed, name

    with duckdb.connect(str(daqing_db)) as con:  # the truth says which rows exist; tamper one of each side
        payments = [
            r[0]
            for r in con.execute("SELECT source_key FROM truth.contribution ORDER BY 1 LIMIT 2").fetchall()
        ]
        person = con.execute("SELECT source_person_no FROM truth.person ORDER BY 1 LIMIT 1").fetchone()[0]
        con.execute("UPDATE dbo.T_PERSON SET MOBILE = '13900000000' WHERE PERSON_ID = ?", [person])
        con.execute("UPDATE dbo.T_PAYMENT SET EMP_AMT = EMP_AMT + 1 WHERE PAY_ID = ?", [int(payments[0])])
    target.execute(
        target._p(
            "UPDATE province.contribution SET individual_due = individual_due + 0.01 "
            "WHERE source_city = 'daqing' AND source_key = ?"
        ),
        [payments[1]],
    )
    id_number, insurance_type = target.fetchall(
        "SELECT id_number, insurance_type FROM province.enrolment "
        "WHERE source_city = 'daqing' ORDER BY 1, 2 LIMIT 1"
    )[0]
    target.execute(
        target._p(
            "DELETE FROM province.enrolment WHERE source_city = 'daqing' AND id_number = ? "
            "AND insurance_type = ?"
        ),
        [id_number, insurance_type],
    )

    # and the consolidated records: one person gone (its rows orphaned), another's name changed
    gone, renamed = [
        r[0]
        for r in target.fetchall(
            "SELECT DISTINCT id_number FROM province.contribution WHERE source_city = 'daqing' ORDER BY 1 LIMIT 2"
        )
    ]
    orphaned = {
        entity: target.fetchall(
            target._p(
                f"SELECT count(*) FROM province.{entity} WHERE source_city = 'daqing' AND id_number = ?"
            ),
            [gone],
        )[0][0]
        for entity in ("enrolment", "contribution", "account")
    }
    assert orphaned["contribution"] > 0
    target.execute(target._p("DELETE FROM province.person WHERE id_number = ?"), [gone])
    target.execute(target._p("UPDATE province.person SET name = '王五' WHERE id_number = ?"), [renamed])

    with TdsServer(daqing_db) as server:
        ep = SourceEndpoint("127.0.0.1", server.port, "etl", "verify-pw", spec.source.database)
        verified = run_step("verify", spec, ep, target, reports, checker=checker)
    assert not verified.passed
    masked = [f"{i[:6]}********{i[-4:]}" for i in (gone, renamed)]
    assert verified.detail["consolidated"] == {
        "persons_missing": 1,
        "persons_missing_ids": [masked[0]],
        "persons_differing": 1,
        "persons_differing_ids": [masked[1]],
        "orphans": orphaned,
        "matches": False,
    }
    found = {
        name: (e["missing"], e["extra"], e["changed"], e["quarantine_missing"], e["quarantine_extra"])
        for name, e in verified.detail["entities"].items()
    }
    assert found == {
        "employer": (0, 0, 0, 0, 0),
        "person": (0, 0, 1, 0, 0),
        "enrolment": (1, 0, 0, 0, 0),
        "contribution": (0, 0, 2, 0, 0),
        "account": (0, 0, 0, 0, 0),
    }
    e = verified.detail["entities"]
    assert e["person"]["changed_keys"] == [person]
    assert e["contribution"]["changed_keys"] == sorted(payments)
    [missing] = e["enrolment"]["missing_keys"]  # key: ID number (masked) and insurance type
    assert missing == f"{id_number[:6]}********{id_number[-4:]}|{insurance_type}"
    assert re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]\|\d{3}", missing)
    assert [
        tuple(r) for r in target.fetchall("SELECT step, status FROM province.cutover_log ORDER BY started_at")
    ][-1] == ("verify", "failed")

    # the command line says the same and exits non-zero
    for k, v in {"HOST": "127.0.0.1", "USER": "etl", "PASSWORD": "verify-pw"}.items():
        monkeypatch.setenv(f"JINBAO_DAQING_{k}", v)
    url = target.test_url
    if url.startswith("duckdb"):  # one writer per DuckDB file: the command opens it after this test lets go
        target.close()
    with TdsServer(daqing_db) as server:
        monkeypatch.setenv("JINBAO_DAQING_PORT", str(server.port))
        result = CliRunner().invoke(
            app, ["cutover", "daqing", "--verify", "--target", url, "--reports", str(reports)]
        )
    assert result.exit_code == 1, result.output
    assert f"contribution changed: {', '.join(sorted(payments))}" in result.output
    assert f"person changed: {person}" in result.output
    assert "verify: FAILED" in result.output


def _killed_execute(cities, url: str, port: int) -> None:
    """`jinbao cutover harbin --execute`, killed with SIGKILL after three pages of contributions committed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "JINBAO_CITIES_DIR": str(cities),
        "JINBAO_HARBIN_HOST": "127.0.0.1",
        "JINBAO_HARBIN_PORT": str(port),
        "JINBAO_HARBIN_USER": "sa",
        "JINBAO_HARBIN_PASSWORD": "pw",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jinbao.cli",
            "cutover",
            "harbin",
            "--execute",
            "--target",
            url,
            "--reports",
            str(cities.parent / "reports"),
            "-v",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen, deadline = [], time.monotonic() + 180
    for line in proc.stdout:
        seen.append(line)
        if sum("harbin contribution: page" in s for s in seen) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the execute never reached contributions"
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])


def _production_rows(t) -> dict[str, int]:
    return {
        table: t.fetchall(f"SELECT count(*) FROM province.{table} WHERE {cond}")[0][0]
        for table, cond in (
            ("person_xref", "scope = 'P'"),
            ("employer_xref", "scope = 'P'"),
            ("person", "partition_code <> 'T'"),
            ("employer", "scope = 'P'"),
            ("enrolment", "partition_code <> 'T'"),
            ("contribution", "partition_code <> 'T'"),
            ("account", "partition_code <> 'T'"),
            ("quarantine", "scope = 'P'"),
        )
    }


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_interrupted_execute_is_detected_then_rolled_back_or_finished(
    engine, tmp_path, harbin_server, harbin_db, checker, pg_database_factory
):
    import yaml
    from typer.testing import CliRunner

    from extractors import SourceEndpoint
    from jinbao.cli import app
    from jinbao.cutover import load_refusal, state
    from jinbao.spec import CITIES_DIR
    from tests.truth import ENTITIES, assert_quarantine_matches

    raw = yaml.safe_load((CITIES_DIR / "harbin.yml").read_text(encoding="utf-8"))
    raw["source"]["batch_rows"], raw["source"]["max_connections"] = (
        1000,
        1,
    )  # many small pages to be killed between
    cities = tmp_path / "cities"
    cities.mkdir()
    (cities / "harbin.yml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'p.duckdb'}" if engine == "duckdb" else pg_database_factory()
    spec, reports = city_spec("harbin"), tmp_path / "reports"
    ep = SourceEndpoint("127.0.0.1", harbin_server.port, "sa", "pw", spec.source.database)

    def rehearse():
        with open_target(url) as t:
            assert run_step("rehearse", spec, ep, t, reports, checker=checker).passed

    def cli(*args):
        env = {
            "JINBAO_CITIES_DIR": str(cities),
            "JINBAO_HARBIN_HOST": "127.0.0.1",
            "JINBAO_HARBIN_PORT": str(harbin_server.port),
            "JINBAO_HARBIN_USER": "sa",
            "JINBAO_HARBIN_PASSWORD": "pw",
        }
        return CliRunner(env=env).invoke(app, [*args, "--target", url, "--reports", str(reports)])

    rehearse()
    _killed_execute(cities, url, harbin_server.port)
    with open_target(url) as t:
        landed = _production_rows(t)
        assert landed["contribution"] > 0  # rows landed before the kill
        assert state(t, "harbin") == "interrupted"
        assert "did not finish" in load_refusal(t, "harbin")
        log = [
            tuple(r) for r in t.fetchall("SELECT step, status FROM province.cutover_log ORDER BY started_at")
        ]
        assert log == [("rehearse", "passed"), ("execute", "running")]
    refused = cli("load", "harbin")
    assert refused.exit_code == 2 and "did not finish" in refused.output
    assert cli("cutover", "harbin", "--verify").exit_code == 2  # nothing finished to verify

    # --rollback removes what the interrupted execute left
    rolled = cli("cutover", "harbin", "--rollback")
    assert rolled.exit_code == 0, rolled.output
    with open_target(url) as t:
        assert _production_rows(t) == dict.fromkeys(landed, 0)
        assert state(t, "harbin") == "rolled back"
        assert [
            tuple(r) for r in t.fetchall("SELECT step, status FROM province.cutover_log ORDER BY started_at")
        ] == [("rehearse", "passed"), ("execute", "interrupted"), ("rollback", "passed")]
    assert cli("cutover", "harbin", "--execute").exit_code == 2  # a rollback needs a new rehearsal
    forced = cli("cutover", "harbin", "--verify", "--force")  # rolled back: out of order, and says so
    assert "forced: the city is rolled back: nothing to verify" in forced.output
    with open_target(url) as t:
        t.execute("DELETE FROM province.cutover_log WHERE step = 'verify'")  # as if it had not run

    # ... or the next --execute finishes it: exactly the truth, nothing twice
    rehearse()
    _killed_execute(cities, url, harbin_server.port)
    finished = cli("cutover", "harbin", "--execute")
    assert finished.exit_code == 0, finished.output
    assert "finishes the execute that was interrupted" in finished.output
    report = (tmp_path / "reports" / "latest-harbin.html").read_text(encoding="utf-8")
    assert "<b>resumed</b>: it finishes the execute that was interrupted" in report
    with open_target(url) as t:
        assert state(t, "harbin") == "executed" and load_refusal(t, "harbin") is None
        for entity in ENTITIES:
            assert_entity_matches(t, harbin_db, entity)
        assert_quarantine_matches(t, harbin_db)
        assert (
            t.fetchall("SELECT DISTINCT partition_code FROM province.contribution WHERE partition_code = 'T'")
            == []
        )
        assert [
            tuple(r) for r in t.fetchall("SELECT step, status FROM province.cutover_log ORDER BY started_at")
        ][-3:] == [("rehearse", "passed"), ("execute", "interrupted"), ("execute", "passed")]


@pytest.mark.parametrize(
    "status, message",
    [
        ("running", "the latest rehearsal did not finish (interrupted): rehearse again"),
        ("interrupted", "the latest rehearsal did not finish (interrupted): rehearse again"),
        ("failed", "the latest rehearsal failed: fix it and rehearse again"),
        ("passed", None),
    ],
)
def test_execute_after_a_rehearsal_says_how_that_rehearsal_ended(tmp_path, status, message):
    import datetime as dt

    from jinbao.cutover import check_order

    with open_target(f"duckdb:///{tmp_path / 'p.duckdb'}") as t:
        t.ensure_schema()
        t.execute(
            "INSERT INTO province.cutover_log (city, started_at, step, status) VALUES ('daqing', ?, 'rehearse', ?)",
            [dt.datetime(2026, 11, 1, 9), status],
        )
        assert check_order(t, "daqing", "execute") == message
