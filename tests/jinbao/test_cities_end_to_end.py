"""Every city variant, through its own protocol, driver and quirks, against its own ground truth."""

from __future__ import annotations

import pytest

from jinbao.runner import run_city
from jinbao.spec import city_spec
from jinbao.targets import open_target
from tests.truth import assert_entity_matches, assert_quarantine_matches

pytestmark = [pytest.mark.simulator, pytest.mark.slow]
CITIES = ["harbin", "qiqihar", "mudanjiang", "daqing"]


@pytest.fixture(scope="module", params=CITIES)
def city_load(request, tmp_path_factory, checker):
    from extractors import SourceEndpoint
    from fixtures.generator import generate_city
    from fixtures.tds import TdsServer

    city = request.param
    spec = city_spec(city)
    db = tmp_path_factory.mktemp(city) / f"{city}.duckdb"
    generate_city(spec.simulator.variant, db, persons=600, seed=11)
    target = open_target(f"duckdb:///{db.parent / 'province.duckdb'}")
    with TdsServer(db) as server:  # dialect, charset and TDS version come from the city file's catalog
        endpoint = SourceEndpoint("127.0.0.1", server.port, "etl", "city-pw", spec.source.database)
        run = run_city(spec, endpoint, target, checker=checker)
    yield spec, run, target, db
    target.close()


def test_city_matches_its_ground_truth_field_by_field(city_load):
    spec, run, target, db = city_load
    assert run.reconciled
    entities = ["person_xref" if n == "person" else n for n, _ in spec.ordered_entities()]
    for entity in [*entities, "person"]:
        assert_entity_matches(target, db, entity)
    assert_quarantine_matches(target, db)


def test_chinese_names_survive_the_city_encoding(city_load):
    spec, _, target, db = city_load
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        rare = con.execute(
            "SELECT name FROM truth.person WHERE regexp_matches(name, '[镕喆堃玥昇]') ORDER BY name LIMIT 5"
        ).fetchall()
    assert rare, f"{spec.city}: the generator should include GBK-only name characters"
    got = {r[0] for r in target.fetchall("SELECT name FROM province.person")}
    assert {r[0] for r in rare} <= got
