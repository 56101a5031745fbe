import pyarrow as pa
import pytest

from jinbao.errors import SpecError
from jinbao.spec import CITIES_DIR as CITIES_DIR_FOR_TESTS
from jinbao.spec import all_cities, city_spec, load_spec


def test_every_spec_in_cities_loads():
    assert "harbin" in all_cities()
    for city in all_cities():
        assert city_spec(city).city == city


def test_money_and_decimal_columns_keep_their_scale():
    schema = city_spec("harbin").entities["contribution"].arrow_schema
    assert schema.field("aae180").type == pa.decimal128(14, 2)
    assert schema.field("aae020").type == pa.decimal128(19, 4)
    assert schema.field("aaz223").type == pa.int64()


def test_a_bad_spec_names_file_field_and_value(tmp_path):
    text = city_spec("harbin").model_dump_json()
    import json

    raw = json.loads(text)
    raw["entities"]["person"]["columns"]["aac003"]["type"] = "varchar2(20)"
    path = tmp_path / "bad.yml"
    import yaml

    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "entities.person.columns.aac003.type" in msg
    assert "varchar2(20)" in msg


def test_unknown_city_lists_the_known_ones():
    with pytest.raises(SpecError, match="known: .*harbin"):
        city_spec("atlantis")


@pytest.mark.parametrize(
    ("dialect", "version", "message"),
    [("sybase", "7.4", "speaks TDS 5.0"), ("mssql", "5.0", "speaks TDS 7.x")],
)
def test_the_protocol_must_fit_the_server(tmp_path, dialect, version, message):
    import json

    import yaml

    raw = json.loads(city_spec("harbin").model_dump_json())
    raw["source"].update({"dialect": dialect, "tds_version": version})
    path = tmp_path / "x.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError, match=message):
        load_spec(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda raw: raw["entities"]["person"]["columns"]["aac002"].update(to="id_nmber"),
            "unknown unified column",
        ),
        (
            lambda raw: raw["entities"]["person"]["columns"]["aac006"].update(to="name"),
            "more than one source column",
        ),
    ],
)
def test_mapping_mistakes_are_caught_when_the_spec_loads(tmp_path, change, message):
    import json

    import yaml

    raw = json.loads(city_spec("harbin").model_dump_json())
    change(raw)
    path = tmp_path / "harbin.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SpecError, match=message) as raised:
        load_spec(path)
    assert "(got {" not in str(raised.value)  # the rule names the mistake; the whole spec is not echoed
    assert "  : " not in str(raised.value)  # nor an empty field path


def test_a_spec_must_name_its_own_city(tmp_path):
    import shutil

    shutil.copy(CITIES_DIR_FOR_TESTS / "harbin.yml", tmp_path / "qiqihar.yml")
    with pytest.raises(SpecError, match="does not match the file name"):
        city_spec("qiqihar", tmp_path)


def test_a_copied_spec_still_pointing_at_its_original_city_is_caught(tmp_path, monkeypatch):
    """Copy harbin.yml to jiamusi.yml and change only the city: it would load Harbin's database as Jiamusi."""
    from typer.testing import CliRunner

    from jinbao.cli import app
    from jinbao.spec import shared_settings

    original = (CITIES_DIR_FOR_TESTS / "harbin.yml").read_text(encoding="utf-8")
    (tmp_path / "harbin.yml").write_text(original, encoding="utf-8")
    (tmp_path / "jiamusi.yml").write_text(original.replace("city: harbin", "city: jiamusi"), encoding="utf-8")
    specs = [city_spec(c, tmp_path) for c in ("harbin", "jiamusi")]
    assert shared_settings(specs) == [
        "harbin and jiamusi share source.env_prefix 'JINBAO_HARBIN': each city needs its own",
        "harbin and jiamusi share source.conn_id 'jinbao_city_harbin': each city needs its own",
        "harbin and jiamusi share display_name '哈尔滨': each city needs its own",
    ]
    assert shared_settings([city_spec(c) for c in all_cities()]) == []  # the cities we ship
    monkeypatch.setattr("jinbao.spec.CITIES_DIR", tmp_path)
    result = CliRunner().invoke(app, ["cities"])
    assert result.exit_code == 2 and "share source.env_prefix" in result.output
