import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa

from jinbao.spec import city_spec
from transforms.normalize import normalize_batch, unified_schema

HARBIN = city_spec("harbin")


def _person_batch(rows):
    entity = HARBIN.entities["person"]
    cols = [
        "aac001",
        "aac002",
        "aac003",
        "aac004",
        "aac005",
        "aac006",
        "aac007",
        "aab301",
        "aae005",
        "aae006",
    ]
    return pa.Table.from_pylist([dict(zip(cols, r, strict=True)) for r in rows], schema=entity.arrow_schema)


def test_person_is_trimmed_mapped_and_sentinels_become_null():
    batch = _person_batch(
        [
            (
                "P00000001   ",
                "11010519491231002x",
                "\u3000王镕  ",
                "2",
                "01",
                dt.datetime(1949, 12, 31),
                dt.datetime(1900, 1, 1),
                "230103",
                "13912345678",
                "哈尔滨市南岗区西大直街1号",
            ),
        ]
    )
    out = normalize_batch("person", batch, HARBIN.entities["person"], "harbin")
    assert out.quarantined.num_rows == 0
    assert out.rows.schema == unified_schema("person")
    assert out.rows.to_pylist() == [
        {
            "id_number": "11010519491231002X",
            "name": "王镕",
            "sex": "2",
            "ethnicity": "01",
            "birth_date": dt.date(1949, 12, 31),
            "work_start_date": None,
            "division_code": "230103",
            "phone": "13912345678",
            "address": "哈尔滨市南岗区西大直街1号",
            "source_city": "harbin",
            "source_person_no": "P00000001",
        }
    ]


def test_person_with_unmapped_sex_is_quarantined_with_the_original_row():
    batch = _person_batch(
        [
            (
                "P2",
                "11010519491231002X",
                "李喆",
                "7",
                "01",
                dt.datetime(1949, 12, 31),
                None,
                "230103",
                None,
                None,
            )
        ]
    )
    out = normalize_batch("person", batch, HARBIN.entities["person"], "harbin")
    assert out.rows.num_rows == 0
    q = out.quarantined.to_pylist()[0]
    assert (q["source_key"], q["reason_code"], q["entity"]) == ("P2", "UNMAPPED_CODE", "person")
    assert "aac004='7'" in q["reason_detail"]
    assert json.loads(q["original_values"])["aac003"] == "李喆"


def test_blank_name_is_quarantined():
    batch = _person_batch(
        [
            (
                "P3",
                "11010519491231002X",
                " \u3000 ",
                "2",
                "01",
                dt.datetime(1949, 12, 31),
                None,
                "230103",
                None,
                None,
            )
        ]
    )
    out = normalize_batch("person", batch, HARBIN.entities["person"], "harbin")
    assert out.quarantined.column("reason_code").to_pylist() == ["NAME_MISSING"]


def _contribution(row_id, person, base, insurance="110", due=Decimal("800.0000")):
    return {
        "aaz223": row_id,
        "aac001": person,
        "aab001": "E0000001  ",
        "aae140": insurance,
        "aae002": 202401,
        "aae003": 202401,
        "aae143": "1 ",
        "aae180": base,
        "aae020": due,
        "aae021": Decimal("0.0000"),
        "aae022": Decimal("400.0000"),
        "aae023": Decimal("400.0000"),
        "aae078": "1",
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
    assert out.extracted_money == Decimal("298285.43") + Decimal("6600.00") * 2 + Decimal(
        "1599.00"
    ) + Decimal("5800.1234")
    assert out.quarantined_money == out.extracted_money - Decimal("298285.43")
    assert out.extracted_rows == 5


WIDE = {
    "table": "dbo.jfmx",
    "key": ["grbh", "ny"],
    "columns": {
        "grbh": {"type": "char(10)", "to": "source_person_no"},
        "ny": {"type": "int", "to": "fee_period"},
        "ssny": {"type": "int", "to": "accounting_period"},
        "dwbh": {"type": "char(8)", "to": "employer_no"},
        "jflx": {"type": "char(1)", "to": "payment_type"},
    },
    "codes": {"payment_type": {"1": "1", "2": "2"}},
    "unpivot": {
        "column": "insurance_type",
        "groups": {
            "110": {"yl_jfjs": "contribution_base", "yl_dwjf": "employer_due", "yl_grjf": "individual_due"},
            "310": {"yb_jfjs": "contribution_base", "yb_dwjf": "employer_due", "yb_grjf": "individual_due"},
        },
        "columns": {
            c: {"type": "bigint", "unit": "fen"}
            for c in ("yl_jfjs", "yl_dwjf", "yl_grjf", "yb_jfjs", "yb_dwjf", "yb_grjf")
        },
    },
}


def test_wide_rows_in_fen_become_one_exact_row_per_insurance_type():
    from jinbao.spec import EntitySpec

    entity = EntitySpec.model_validate(WIDE)
    rows = [
        {
            "grbh": "M001",
            "ny": 202401,
            "ssny": 202401,
            "dwbh": "E1",
            "jflx": "1",
            "yl_jfjs": 500001,
            "yl_dwjf": 80000,
            "yl_grjf": 40000,
            "yb_jfjs": 500001,
            "yb_dwjf": 40001,
            "yb_grjf": 10000,
        },
        {
            "grbh": "M002",
            "ny": 202401,
            "ssny": 202401,
            "dwbh": "E1",
            "jflx": "1",
            "yl_jfjs": 300000,
            "yl_dwjf": 48000,
            "yl_grjf": 24000,
            "yb_jfjs": None,
            "yb_dwjf": None,
            "yb_grjf": None,
        },
        {
            "grbh": "M003",
            "ny": 202401,
            "ssny": 202401,
            "dwbh": "E1",
            "jflx": "1",
            "yl_jfjs": None,
            "yl_dwjf": None,
            "yl_grjf": None,
            "yb_jfjs": None,
            "yb_dwjf": None,
            "yb_grjf": None,
        },
    ]
    batch = pa.Table.from_pylist(rows, schema=entity.arrow_schema)
    index = pa.table(
        {"source_person_no": ["M001", "M002", "M003"], "id_number": ["11010519491231002X", "A", "B"]}
    )
    out = normalize_batch("contribution", batch, entity, "mudanjiang", person_index=index)
    got = {
        (r["source_key"], r["insurance_type"]): (
            r["contribution_base"],
            r["employer_due"],
            r["individual_due"],
            r["employer_to_account"],
        )
        for r in out.rows.to_pylist()
    }
    assert got == {
        ("M001|202401|110", "110"): (
            Decimal("5000.01"),
            Decimal("800.00"),
            Decimal("400.00"),
            Decimal("0.00"),
        ),
        ("M001|202401|310", "310"): (
            Decimal("5000.01"),
            Decimal("400.01"),
            Decimal("100.00"),
            Decimal("0.00"),
        ),
        ("M002|202401|110", "110"): (
            Decimal("3000.00"),
            Decimal("480.00"),
            Decimal("240.00"),
            Decimal("0.00"),
        ),
    }
    # a wide row with no insurance type at all is quarantined, not dropped
    assert out.quarantined.select(["source_key", "reason_code"]).to_pylist() == [
        {"source_key": "M003|202401", "reason_code": "VALUE_MISSING"}
    ]
    assert out.extracted_rows == 4
    assert out.extracted_money == Decimal("5000.01") + 1200 + Decimal("5000.01") + Decimal("500.01") + 3720


def test_integer_dates_float_amounts_and_word_codes():
    from jinbao.spec import EntitySpec

    entity = EntitySpec.model_validate(
        {
            "table": "dbo.cbry",
            "key": ["grbh"],
            "columns": {
                "grbh": {"type": "varchar(10)", "to": "source_person_no"},
                "sfzh": {"type": "varchar(18)", "to": "id_number"},
                "xm": {"type": "varchar(20)", "to": "name"},
                "xb": {"type": "varchar(2)", "to": "sex"},
                "csrq": {"type": "int", "format": "yyyymmdd", "to": "birth_date"},
            },
            "codes": {"sex": {"男": "1", "女": "2"}},
        }
    )
    batch = pa.Table.from_pylist(
        [
            {"grbh": "Q1", "sfzh": "11010519491231002X", "xm": "刘喆", "xb": "女", "csrq": 19491231},
            {"grbh": "Q2", "sfzh": "11010519491231002X", "xm": "刘喆", "xb": "女", "csrq": 0},
            {"grbh": "Q3", "sfzh": "11010519491231002X", "xm": "刘喆", "xb": "女", "csrq": 19490231},
        ],
        schema=entity.arrow_schema,
    )
    out = normalize_batch("person", batch, entity, "qiqihar")
    assert [(r["sex"], r["birth_date"]) for r in out.rows.to_pylist()] == [("2", dt.date(1949, 12, 31))]
    # birth date 0 is unknown: the ID cannot be cross-checked, so the row is held back
    # 31 February is not a date either (Arrow's parser alone would roll it into March)
    assert out.quarantined.column("reason_code").to_pylist() == ["DATE_INVALID", "DATE_INVALID"]

    from transforms.normalize import read_money

    col = EntitySpec.model_validate(
        {"table": "t", "key": ["a"], "columns": {"a": {"type": "float"}}}
    ).columns["a"]
    cents, off, _ = read_money(pa.array([296685.43, 0.1 + 0.2, 12.345, None]), col, pa.decimal128(18, 2))
    assert cents.to_pylist()[:2] == [Decimal("296685.43"), Decimal("0.30")]
    assert off.to_pylist() == [False, False, True, False]
