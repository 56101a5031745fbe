"""The nightly DAG, run with ``dag.test()`` against the simulated city, in its own Airflow home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.simulator, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

RUN_DAG = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("nightly_load", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
dr = mod.nightly_load_dag.test(run_conf={"cities": ["harbin"], "reports_dir": sys.argv[2]})
print("DAGRUN_STATE", dr.state)
"""


def test_dag_file_imports_nothing_heavy_at_top_level():
    code = (
        "import sys, runpy; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas', 'pyarrow', 'duckdb', 'great_expectations', 'pymssql', 'pyodbc') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "nightly_load.py")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _cut_over(city: str, url: str) -> None:
    """Record the city's cutover as executed (the cutover itself is tested in tests/jinbao/test_cutover.py)."""
    import datetime as dt

    from jinbao.targets import open_target

    with open_target(url) as t:
        t.ensure_schema()
        for step, at in (
            ("rehearse", dt.datetime(2026, 11, 1, 9)),
            ("execute", dt.datetime(2026, 11, 1, 10)),
        ):
            t.execute(
                "INSERT INTO province.cutover_log (city, started_at, step, status) VALUES (?, ?, ?, 'passed')",
                [city, at, step],
            )


def test_a_city_not_cut_over_is_skipped_by_the_nightly_load_not_loaded(tmp_path, monkeypatch):
    from jinbao import orchestration

    url = f"duckdb:///{tmp_path / 'target.duckdb'}"
    monkeypatch.setattr(orchestration, "target_url_from_airflow", lambda conn_id: url)
    result = orchestration.load_city_with_airflow_connections("harbin", "jinbao_province")
    assert result["skipped"].startswith("harbin: refusing a production load: its cutover was never executed")
    assert result["reconciled"] and result["entities"] == {}


def test_nightly_load_dag_loads_the_city_through_airflow_connections(tmp_path, harbin_server, harbin_db):
    target = tmp_path / "target.duckdb"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW_CONN_JINBAO_CITY_HARBIN": json.dumps(
            {
                "conn_type": "sybase",
                "host": "127.0.0.1",
                "port": harbin_server.port,
                "login": "sa",
                "password": "dag-secret-pw",
                "schema": "hrb_si",
            }
        ),
        "AIRFLOW_CONN_JINBAO_PROVINCE": json.dumps(
            {"conn_type": "generic", "extra": {"url": f"duckdb:///{target}"}}
        ),
    }
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
    )
    _cut_over("harbin", f"duckdb:///{target}")  # the nightly load keeps cut-over cities current
    out = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(REPO / "dags" / "nightly_load.py"), str(tmp_path / "reports")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    log = out.stdout + out.stderr
    assert "DAGRUN_STATE success" in out.stdout, log[-5000:]
    assert "dag-secret-pw" not in log
    with duckdb.connect(str(target)) as con:
        con.execute(f"ATTACH '{harbin_db}' AS sim (READ_ONLY)")
        for entity in ("employer", "person", "enrolment", "contribution", "account"):
            got = con.execute(f"SELECT count(*) FROM province.{entity}").fetchone()[0]
            want = con.execute(f"SELECT count(*) FROM sim.truth.{entity}").fetchone()[0]
            assert got == want > 0, entity
    assert list((tmp_path / "reports").glob("latest-harbin.html"))
