"""Failures end with a clear message and a non-zero exit, never a silent success."""

import pytest
from typer.testing import CliRunner

from jinbao.cli import app


def test_load_without_an_endpoint_says_which_variables_to_set(tmp_path, monkeypatch):
    for k in ("HOST", "PORT", "USER", "PASSWORD"):
        monkeypatch.delenv(f"JINBAO_HARBIN_{k}", raising=False)
    result = CliRunner().invoke(app, ["load", "harbin", "--target", f"duckdb:///{tmp_path / 'p.duckdb'}"])
    assert result.exit_code == 2
    assert "JINBAO_HARBIN_HOST" in result.output and "JINBAO_HARBIN_PASSWORD" in result.output


def test_an_unreachable_source_fails_the_load_with_exit_2(tmp_path, monkeypatch):
    import yaml

    from jinbao.spec import CITIES_DIR

    raw = yaml.safe_load((CITIES_DIR / "daqing.yml").read_text(encoding="utf-8"))
    raw["source"]["retries"] = 0
    (tmp_path / "daqing.yml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr("jinbao.spec.CITIES_DIR", tmp_path)
    for k, v in {"HOST": "127.0.0.1", "PORT": "1", "USER": "u", "PASSWORD": "never-shown-pw"}.items():
        monkeypatch.setenv(f"JINBAO_DAQING_{k}", v)
    result = CliRunner().invoke(
        app, ["load", "daqing", "--force", "--target", f"duckdb:///{tmp_path / 'p.duckdb'}"]
    )
    assert result.exit_code == 2
    assert "cannot connect" in result.output
    assert "never-shown-pw" not in result.output


def test_an_unknown_target_url_is_refused(monkeypatch):
    for k, v in {"HOST": "127.0.0.1", "PORT": "1", "USER": "u", "PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"JINBAO_HARBIN_{k}", v)
    result = CliRunner().invoke(app, ["load", "harbin", "--target", "oracle://x"])
    assert result.exit_code == 2 and "unknown target URL" in result.output


def test_a_mistyped_target_url_never_echoes_its_password(monkeypatch):
    for k, v in {"HOST": "127.0.0.1", "PORT": "1", "USER": "u", "PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"JINBAO_HARBIN_{k}", v)
    result = CliRunner().invoke(app, ["load", "harbin", "--target", "POSTGRESQL://etl:Hunter2pw@db/prov"])
    assert result.exit_code == 2 and "Hunter2pw" not in result.output and "etl:***@" in result.output


def _unreachable_daqing(tmp_path, monkeypatch):
    import yaml

    from jinbao.spec import CITIES_DIR

    raw = yaml.safe_load((CITIES_DIR / "daqing.yml").read_text(encoding="utf-8"))
    raw["source"]["retries"] = 0
    (tmp_path / "daqing.yml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr("jinbao.spec.CITIES_DIR", tmp_path)
    for k, v in {"HOST": "127.0.0.1", "PORT": "1", "USER": "u", "PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"JINBAO_DAQING_{k}", v)


def _log(url: str, *steps: tuple[str, str]) -> None:
    import datetime as dt

    from jinbao.targets import open_target

    with open_target(url) as t:
        t.ensure_schema()
        for i, (step, status) in enumerate(steps):
            t.execute(
                f"INSERT INTO province.cutover_log (city, started_at, step, status) VALUES ('daqing', {t.marker}, {t.marker}, {t.marker})",
                [dt.datetime(2026, 11, 1, 9, i), step, status],
            )


def test_a_production_load_refuses_a_city_whose_cutover_is_not_executed(tmp_path, monkeypatch):
    """The rule (README, Cutovers): `load` runs only while the city's latest execute passed and was not rolled back."""
    _unreachable_daqing(tmp_path, monkeypatch)
    cases = {
        "never": ((), "its cutover was never executed"),
        "rolled-back": (
            (("rehearse", "passed"), ("execute", "passed"), ("rollback", "passed")),
            "its cutover was rolled back",
        ),
        "interrupted": (
            (("rehearse", "passed"), ("execute", "running")),
            "its latest `cutover --execute` did not finish",
        ),
        "failed": ((("rehearse", "passed"), ("execute", "failed")), "did not reconcile"),
        "re-executed": (
            (
                ("rehearse", "passed"),
                ("execute", "passed"),
                ("rollback", "passed"),
                ("rehearse", "passed"),
                ("execute", "passed"),
            ),
            None,
        ),
    }
    for name, (steps, refusal) in cases.items():
        url = f"duckdb:///{tmp_path / name}.duckdb"
        _log(url, *steps)
        result = CliRunner().invoke(app, ["load", "daqing", "--target", url])
        assert result.exit_code == 2, name
        if refusal:
            assert "daqing: refusing a production load" in result.output and refusal in result.output, (
                result.output
            )
            assert "cannot connect" not in result.output  # refused before the source is touched
            forced = CliRunner().invoke(app, ["load", "daqing", "--force", "--target", url])
            assert forced.exit_code == 2 and "forced:" in forced.output and "cannot connect" in forced.output
        else:  # an executed city passes the check and goes on to its source
            assert "refusing" not in result.output and "cannot connect" in result.output


@pytest.mark.postgres
def test_a_load_beside_a_cutover_step_of_its_city_is_refused(tmp_path, monkeypatch, pg_database_factory):
    """A load beside a running rollback would put rows back into the city the rollback removes."""
    from jinbao.targets import open_target

    _unreachable_daqing(tmp_path, monkeypatch)
    url = pg_database_factory()
    _log(url, ("rehearse", "passed"), ("execute", "passed"))
    with open_target(url) as step:  # a cutover step of daqing, running
        assert step.try_lock("cutover.daqing")
        result = CliRunner().invoke(app, ["load", "daqing", "--target", url])
        assert result.exit_code == 2
        assert "daqing: a cutover step or a load of this city is running" in result.output
        assert "cannot connect" not in result.output  # refused before the source is touched
        other = CliRunner().invoke(app, ["load", "harbin", "--force", "--target", url])
        assert "is running" not in other.output  # another city is not held
    result = CliRunner().invoke(app, ["load", "daqing", "--target", url])
    assert result.exit_code == 2 and "cannot connect" in result.output  # released: on to its source


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    """Run the console script as a shell would."""
    from jinbao.cli import main

    monkeypatch.setattr("sys.argv", ["jinbao", *argv])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr()
    return exit_.value.code, out.out + out.err


def test_errors_outside_a_load_end_in_one_line_too(tmp_path, monkeypatch, capsys):
    code, out = _main(monkeypatch, capsys, "simulate", "shenyang")
    assert code == 2 and "no spec for city 'shenyang'" in out and "Traceback" not in out
    code, out = _main(monkeypatch, capsys, "inspect-encoding", "shenyang", "dbo.ac01")
    assert code == 2 and "no spec for city 'shenyang'" in out
    monkeypatch.chdir(tmp_path)  # the simulator writes under ./.jinbao
    code, out = _main(monkeypatch, capsys, "simulate", "harbin", "--persons", "10")
    assert code == 2 and "cannot simulate harbin" in out and "give more persons" in out
    for k, v in {"HOST": "127.0.0.1", "PORT": "14x3", "USER": "u", "PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"JINBAO_HARBIN_{k}", v)
    code, out = _main(
        monkeypatch, capsys, "load", "harbin", "--force", "--target", f"duckdb:///{tmp_path}/p.duckdb"
    )
    assert code == 2 and "JINBAO_HARBIN_PORT must be a TCP port number, not '14x3'" in out


def test_a_load_whose_reports_cannot_be_written_stops_before_it_loads(tmp_path, monkeypatch, capsys):
    _unreachable_daqing(tmp_path, monkeypatch)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out = _main(
        monkeypatch,
        capsys,
        "load",
        "daqing",
        "--force",
        "--reports",
        str(blocker / "reports"),
        "--target",
        f"duckdb:///{tmp_path}/p.duckdb",
    )
    assert code == 2 and "Not a directory" in out and "cannot connect" not in out


@pytest.mark.simulator
def test_inspect_encoding_names_the_real_charset_without_printing_personal_data(monkeypatch, capsys):
    """Mudanjiang declares cp850 and stores GBK bytes (read as GB18030, its superset): the sample must show it, but not whole names or addresses."""
    import duckdb

    from jinbao.demo import simulated_city_db
    from jinbao.spec import city_spec

    code, out = _main(monkeypatch, capsys, "inspect-encoding", "mudanjiang", "dbo.ac01", "--simulated")
    assert code is None or code == 0, out
    assert "declared cp850; spec says actual gb18030; the sample looks like gb18030" in " ".join(out.split())
    con = duckdb.connect(str(simulated_city_db(city_spec("mudanjiang"), 5000, 20261203)), read_only=True)
    names = [r[0] for r in con.execute("SELECT DISTINCT aac003 FROM dbo.ac01 LIMIT 200").fetchall()]
    con.close()
    # as the server holds them (GBK bytes read as cp850) and as they really are
    shown = [n.strip() for n in names if n and len(n.strip()) > 1]
    real = [n.encode("cp850").decode("gb18030") for n in shown]
    assert len(real) > 20 and all(len(n) >= 2 for n in real)
    assert not [n for n in shown + real if n in out]
