"""Several cities loading into PostgreSQL at once: no deadlock, no lost update, persons consolidated."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest
import yaml

from jinbao.spec import CITIES_DIR
from jinbao.targets import open_target

pytestmark = [pytest.mark.simulator, pytest.mark.slow, pytest.mark.postgres]


def test_two_cities_sharing_every_person_load_concurrently(
    tmp_path, harbin_server, harbin_db, pg_database_factory
):
    # The same legacy data served as two cities: every person appears in both, so both loads
    # consolidate the same ID numbers at the same time.
    cities = tmp_path / "cities"
    cities.mkdir()
    base = yaml.safe_load((CITIES_DIR / "harbin.yml").read_text(encoding="utf-8"))
    base["source"]["batch_rows"] = 2000
    for name in ("harbin", "shuangcheng"):
        spec = {**base, "city": name, "source": {**base["source"], "env_prefix": f"JINBAO_{name.upper()}"}}
        (cities / f"{name}.yml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    url = pg_database_factory()
    env = {**os.environ, "JINBAO_CITIES_DIR": str(cities)}
    for name in ("HARBIN", "SHUANGCHENG"):
        env.update(
            {
                f"JINBAO_{name}_HOST": "127.0.0.1",
                f"JINBAO_{name}_PORT": str(harbin_server.port),
                f"JINBAO_{name}_USER": "sa",
                f"JINBAO_{name}_PASSWORD": "pw",
            }
        )
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jinbao.cli",
                "load",
                city,
                "--force",
                "--target",
                url,
                "--reports",
                str(tmp_path / "reports"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for city in ("harbin", "shuangcheng")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-2000:] for o in outputs)

    with duckdb.connect(str(harbin_db), read_only=True) as con:
        persons, contributions = con.execute(
            "SELECT (SELECT count(*) FROM truth.person), (SELECT count(*) FROM truth.contribution)"
        ).fetchone()
        money = con.execute("SELECT sum(contribution_base) FROM truth.contribution").fetchone()[0]
    with open_target(url) as t:
        assert t.fetchall("SELECT count(*), count(DISTINCT id_number) FROM province.person")[0] == (
            persons,
            persons,
        )
        assert t.fetchall("SELECT count(*) FROM province.person_xref")[0][0] == 2 * persons
        # attributes come from the first city in name order, whichever load finished first
        assert t.fetchall("SELECT DISTINCT source_city FROM province.person") == [("harbin",)]
        assert t.fetchall("SELECT count(*), sum(contribution_base) FROM province.contribution")[0] == (
            2 * contributions,
            2 * money,
        )
        doubles = t.consolidation_findings(limit=5)["double_payments"]
        assert len(doubles) == 5  # every month is paid in both cities, and is flagged
