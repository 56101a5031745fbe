"""Failures end with a clear message and a non-zero exit, never a silent success."""

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
                "INSERT INTO province.cutover_log (city, started_at, step, status) VALUES ('daqing', ?, ?, ?)",
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
