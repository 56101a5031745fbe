import datetime as dt
from decimal import Decimal

import pyarrow as pa

from loaders import DuckDBTarget
from transforms.normalize import unified_schema


def _person(id_number, person_no, name="王镕"):
    return {
        "id_number": id_number, "name": name, "sex": "2", "ethnicity": "01", "birth_date": dt.date(1949, 12, 31),
        "work_start_date": None, "division_code": "110105", "phone": None, "address": None,
        "source_city": "harbin", "source_person_no": person_no,
    }


def _persons(*rows):
    return pa.Table.from_pylist(list(rows), schema=unified_schema("person"))


def test_schema_carries_national_codes_in_column_comments(tmp_path):
    with DuckDBTarget(tmp_path / "p.duckdb") as t:
        t.ensure_schema()
        t.ensure_schema()  # idempotent
        comments = dict(
            t.con.execute(
                "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() WHERE schema_name = 'province'"
            ).fetchall()
        )
    assert comments["person.id_number"].startswith("AAC002 ")
    assert comments["contribution.contribution_base"].startswith("AAE180 ")
    assert comments["account.account_id"].startswith("AAZ116 ")
    tables = {k.split(".")[0] for k in comments}
    assert tables == {"person", "employer", "enrolment", "contribution", "account", "quarantine", "load_batch"}


def test_applying_the_same_rows_twice_changes_nothing(tmp_path):
    rows = _persons(_person("11010519491231002X", "P1"), _person("230103190001010034", "P2", "李喆"))
    with DuckDBTarget(tmp_path / "p.duckdb") as t:
        t.ensure_schema()
        first = t.apply("person", rows, source_key_columns=("source_city", "source_person_no"))
        second = t.apply("person", rows, source_key_columns=("source_city", "source_person_no"))
        content = t.con.execute("SELECT * FROM province.person ORDER BY id_number").fetchall()
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    assert [r[1] for r in content] == ["王镕", "李喆"]


def test_a_key_held_by_another_source_record_is_refused_not_overwritten(tmp_path):
    with DuckDBTarget(tmp_path / "p.duckdb") as t:
        t.ensure_schema()
        t.apply("person", _persons(_person("11010519491231002X", "P1")), source_key_columns=("source_city", "source_person_no"))
        res = t.apply(
            "person",
            _persons(_person("11010519491231002X", "P9", "冒名"), _person("230103190001010034", "P2"), _person("230103190001010034", "P3")),
            source_key_columns=("source_city", "source_person_no"),
        )
        names = t.con.execute("SELECT source_person_no, name FROM province.person ORDER BY 1").fetchall()
    assert res.inserted == 1
    assert sorted(zip(res.rejected.column("source_person_no").to_pylist(), res.rejected.column("reason").to_pylist(), strict=True)) == [
        ("P3", "same key twice in one batch"),
        ("P9", "key already held by another source record"),
    ]
    assert names == [("P1", "王镕"), ("P2", "王镕")]


def test_money_totals_are_exact_decimals(tmp_path):
    row = {
        "source_city": "harbin", "source_row_id": 2**53 + 1, "id_number": "11010519491231002X", "employer_no": "E1",
        "insurance_type": "110", "fee_period": 202401, "accounting_period": 202401, "payment_type": "1",
        "contribution_base": Decimal("296685.43"), "employer_due": Decimal("12345678901234.56"),
        "employer_to_account": Decimal("0.01"), "individual_due": Decimal("0.00"), "individual_to_account": Decimal("0.00"),
        "received_flag": "1", "received_date": None,
    }
    with DuckDBTarget(tmp_path / "p.duckdb") as t:
        t.ensure_schema()
        t.apply("contribution", pa.Table.from_pylist([row], schema=unified_schema("contribution")))
        n, total = t.entity_totals("contribution", "harbin", ["contribution_base", "employer_due", "employer_to_account"])
        stored = t.con.execute("SELECT source_row_id, employer_due FROM province.contribution").fetchone()
    assert n == 1
    assert total == Decimal("12345678901234.56") + Decimal("296685.43") + Decimal("0.01")
    assert stored == (9007199254740993, Decimal("12345678901234.56"))
