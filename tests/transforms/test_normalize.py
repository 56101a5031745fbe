import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa

from jinbao.spec import city_spec
from transforms.normalize import normalize_batch, unified_schema

HARBIN = city_spec("harbin")


def _person_batch(rows):
    entity = HARBIN.entities["person"]
    cols = list(entity.columns)
    return pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in rows], schema=entity.arrow_schema)


def test_person_is_trimmed_mapped_and_sentinels_become_null():
    batch = _person_batch(
        [
            ("P00000001   ", "11010519491231002x", "\u3000王镕  ", "2", "01",
             dt.datetime(1949, 12, 31), dt.datetime(1900, 1, 1), "230103", "13912345678", "哈尔滨市南岗区西大直街1号"),
        ]
    )
    out = normalize_batch("person", batch, HARBIN.entities["person"], "harbin")
    assert out.quarantined.num_rows == 0
    assert out.rows.schema == unified_schema("person")
    assert out.rows.to_pylist() == [
        {
            "id_number": "11010519491231002X", "name": "王镕", "sex": "2", "ethnicity": "01",
            "birth_date": dt.date(1949, 12, 31), "work_start_date": None, "division_code": "230103",
            "phone": "13912345678", "address": "哈尔滨市南岗区西大直街1号", "source_city": "harbin",
            "source_person_no": "P00000001",
        }
    ]


def test_person_with_unmapped_sex_is_quarantined_with_the_original_row():
    batch = _person_batch(
        [("P2", "11010519491231002X", "李喆", "7", "01", dt.datetime(1949, 12, 31), None, "230103", None, None)]
    )
    out = normalize_batch("person", batch, HARBIN.entities["person"], "harbin")
    assert out.rows.num_rows == 0
    q = out.quarantined.to_pylist()[0]
    assert (q["source_key"], q["reason_code"], q["entity"]) == ("P2", "UNMAPPED_CODE", "person")
    assert "aac004='7'" in q["reason_detail"]
    assert json.loads(q["original_values"])["aac003"] == "李喆"


def test_blank_name_is_quarantined():
    batch = _person_batch(
        [("P3", "11010519491231002X", " \u3000 ", "2", "01", dt.datetime(1949, 12, 31), None, "230103", None, None)]
    )
    out = normalize_batch("person", batch, HARBIN.entities["person"], "harbin")
    assert out.quarantined.column("reason_code").to_pylist() == ["NAME_MISSING"]


def _contribution(row_id, person, base, insurance="110", due=Decimal("800.0000")):
    return {
        "aaz223": row_id, "aac001": person, "aab001": "E0000001  ", "aae140": insurance, "aae002": 202401,
        "aae003": 202401, "aae143": "1 ", "aae180": base, "aae020": due, "aae021": Decimal("0.0000"),
        "aae022": Decimal("400.0000"), "aae023": Decimal("400.0000"), "aae078": "1",
        "aae079": dt.datetime(2024, 2, 15),
    }


def test_contribution_keeps_exact_money_and_bigint_and_resolves_the_person():
    entity = HARBIN.entities["contribution"]
    big = 2**53 + 1
    batch = pa.Table.from_pylist(
        [
            _contribution(big, "P1          ", Decimal("296685.43")),
            _contribution(big + 1, "P404", Decimal("5000.00")),
            _contribution(big + 2, "P1", Decimal("5000.00"), insurance="999"),
            _contribution(big + 3, "P1", Decimal("-1.00")),
            _contribution(big + 4, "P1", Decimal("5000.00"), due=Decimal("0.1234")),
        ],
        schema=entity.arrow_schema,
    )
    index = pa.table({"source_person_no": ["P1"], "id_number": ["11010519491231002X"]})
    out = normalize_batch("contribution", batch, entity, "harbin", person_index=index)
    rows = out.rows.to_pylist()
    assert len(rows) == 1
    assert rows[0]["source_key"] == "9007199254740993"
    assert rows[0]["contribution_base"] == Decimal("296685.43")
    assert rows[0]["employer_due"] == Decimal("800.00")
    assert rows[0]["id_number"] == "11010519491231002X"
    assert rows[0]["payment_type"] == "1"
    assert rows[0]["employer_no"] == "E0000001"
    q = {r["source_key"]: r["reason_code"] for r in out.quarantined.to_pylist()}
    assert q == {
        str(big + 1): "PERSON_NOT_LOADED",
        str(big + 2): "UNMAPPED_CODE",
        str(big + 3): "AMOUNT_INVALID",
        str(big + 4): "AMOUNT_INVALID",  # 0.1234 does not fit cents: held back, never rounded
    }
    # reconciliation money is exact: the sub-cent 0.1234 is counted as the source held it
    assert out.extracted_money == Decimal("298285.43") + Decimal("6600.00") * 2 + Decimal("1599.00") + Decimal("5800.1234")
    assert out.quarantined_money == out.extracted_money - Decimal("298285.43")
    assert out.extracted_rows == 5
