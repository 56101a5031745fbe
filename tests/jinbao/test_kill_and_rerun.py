"""A load killed with SIGKILL mid-way, then run again, ends with exactly the expected rows."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from jinbao.spec import CITIES_DIR
from jinbao.targets import open_target
from tests.truth import ENTITIES, assert_entity_matches, assert_quarantine_matches

pytestmark = [pytest.mark.simulator, pytest.mark.slow]


def _load(cities_dir: Path, target_url: str, port: int, log: Path):
    env = {
        **os.environ,
        "JINBAO_CITIES_DIR": str(cities_dir),
        "JINBAO_HARBIN_HOST": "127.0.0.1",
        "JINBAO_HARBIN_PORT": str(port),
        "JINBAO_HARBIN_USER": "sa",
        "JINBAO_HARBIN_PASSWORD": "kill-test-pw",
    }
    return subprocess.Popen(
        # --force: the city is loaded outside a cutover (tests/jinbao/test_cutover.py kills an --execute)
        [
            sys.executable,
            "-m",
            "jinbao.cli",
            "load",
            "harbin",
            "--force",
            "--target",
            target_url,
            "--reports",
            str(log.parent / "reports"),
            "-v",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_minus_nine_mid_load_then_rerun_gives_exactly_the_truth(
    engine, tmp_path, harbin_server, harbin_db, pg_database_factory
):
    spec = yaml.safe_load((CITIES_DIR / "harbin.yml").read_text(encoding="utf-8"))
    spec["source"]["batch_rows"] = 1000  # many small pages, so the kill lands between commits
    spec["source"]["max_connections"] = 1
    cities = tmp_path / "cities"
    cities.mkdir()
    (cities / "harbin.yml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    url = f"duckdb:///{tmp_path / 'p.duckdb'}" if engine == "duckdb" else pg_database_factory()

    proc = _load(cities, url, harbin_server.port, tmp_path / "log")
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        if "harbin contribution: page" in line and sum("harbin contribution: page" in s for s in seen) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "load never reached contributions"
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])

    with open_target(url) as target:
        partial = target.fetchall("SELECT count(*) FROM province.contribution")[0][0]
        statuses = {
            r[0]
            for r in target.fetchall("SELECT status FROM province.load_batch WHERE entity = 'contribution'")
        }
    assert partial > 0 and statuses == {"running"}  # the killed batch is visibly unfinished

    rerun = _load(cities, url, harbin_server.port, tmp_path / "log")
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out[-3000:]
    assert "kill-test-pw" not in out
    with open_target(url) as target:
        for entity in ENTITIES:
            assert_entity_matches(target, harbin_db, entity)
        assert_quarantine_matches(target, harbin_db)
