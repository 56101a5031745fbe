from decimal import Decimal

import pyarrow as pa

from quality.reconcile import EntityReconciliation, money_total
from tests.rows import contribution_row as _contribution
from transforms.normalize import unified_schema


def test_expectations_name_each_failing_row(checker):
    rows = pa.Table.from_pylist(
        [
            _contribution(1),
            _contribution(2, id_number="11010519491231002x"),
            _contribution(3, base="-0.01"),
            _contribution(4, insurance="999", period=300001),
        ],
        schema=unified_schema("contribution"),
    )
    result = checker.check("contribution", rows)
    assert sorted(result.failed_rows) == [1, 2, 3]
    assert result.failed_rows[1] == ["expect_column_values_to_match_regex(id_number)"]
    assert result.failed_rows[2] == ["expect_column_values_to_be_between(contribution_base)"]
    assert sorted(result.failed_rows[3]) == [
        "expect_column_values_to_be_between(accounting_period)",
        "expect_column_values_to_be_between(fee_period)",
        "expect_column_values_to_be_in_set(insurance_type)",
    ]


def test_clean_batch_passes(checker):
    rows = pa.Table.from_pylist([_contribution(1), _contribution(2)], schema=unified_schema("contribution"))
    assert checker.check("contribution", rows).ok


def test_money_total_is_exact():
    t = pa.table(
        {
            "a": pa.array([Decimal("0.10"), Decimal("0.20")], pa.decimal128(14, 2)),
            "b": pa.array([Decimal("12345678901234.5678")], pa.decimal128(19, 4)).take([0, 0]),
        }
    )
    assert money_total(t, ["a", "b"]) == Decimal("24691357802469.4356")


def test_reconciliation_requires_rows_and_money_to_add_up():
    rec = EntityReconciliation(
        "contribution",
        extracted_rows=10,
        loaded_rows=8,
        quarantined_rows=2,
        extracted_money=Decimal("100.01"),
        loaded_money=Decimal("90.00"),
        quarantined_money=Decimal("10.01"),
    )
    assert rec.reconciled
    rec.quarantined_money = Decimal("10.00")
    assert not rec.reconciled
