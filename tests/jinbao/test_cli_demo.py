"""`jinbao demo` as a migration lead runs it: exit code, summary, report with masked IDs."""

from __future__ import annotations

import re

import duckdb
import pytest
from typer.testing import CliRunner

from jinbao.cli import app

pytestmark = [pytest.mark.simulator, pytest.mark.slow]


def test_demo_loads_reconciles_and_writes_a_masked_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--persons", "400", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "all entities reconciled" in result.output
    assert "province database: duckdb:///jinbao.duckdb" in result.output  # where the rows went
    for entity in ("employer", "person", "enrolment", "contribution", "account"):
        assert entity in result.output
    # progress as each entity ends: city, entity, and counts that add up
    progress = re.findall(
        r"^\s+(\w+)\s+(\w+)\s+extracted\s+([\d,]+) = loaded\s+([\d,]+) \+ quarantined\s+([\d,]+) \+ merged\s+([\d,]+)$",
        result.output,
        re.M,
    )
    assert {(c, e) for c, e, *_ in progress} >= {("harbin", "person"), ("daqing", "contribution")}
    for *_, extracted, loaded, quarantined, merged in progress:
        n = [int(x.replace(",", "")) for x in (extracted, loaded, quarantined, merged)]
        assert n[0] == n[1] + n[2] + n[3]
    reports = list((tmp_path / "reports").glob("harbin-*.html"))
    assert len(list((tmp_path / "reports").glob("latest-*.html"))) == 4  # one per simulated city
    assert len(reports) == 1
    import html as html_lib

    html = html_lib.unescape(reports[0].read_text(encoding="utf-8"))
    assert "RECONCILED" in html and "Quarantine by reason" in html
    with duckdb.connect(str(tmp_path / "jinbao.duckdb")) as con:
        ids = [r[0] for r in con.execute("SELECT id_number FROM province.person").fetchall()]
        raw = con.execute("SELECT original_values FROM province.quarantine").fetchall()
    assert ids
    assert not any(i in html for i in ids)
    # the quarantined originals hold raw IDs (malformed ones too) and birth dates in the database,
    # but the report shows neither
    for (orig,) in raw:
        for m in re.findall(r'"aac002": "([^"]+)"', orig):
            if len(m.strip()) >= 10:
                assert m.strip() not in html, m
        for m in re.findall(r'"aac006": "([^"]+)"', orig):
            assert f'"aac006": "{m}"' not in html
    assert '"aac006": "****-**-**"' in html
    second = CliRunner().invoke(app, ["demo", "--persons", "400", "--seed", "7"])
    assert second.exit_code == 0, second.output
