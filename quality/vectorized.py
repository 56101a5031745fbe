"""Evaluate an entity's expectation rules on an Arrow table with pyarrow.compute, a column at a time.

The rules in :mod:`quality.expectations` stay the one statement of the suites; this module
reads each rule (a Great Expectations configuration) and gives the same per-row verdict Great
Expectations' pandas engine gives (nulls ignored except by the not-null rule, every copy of
a duplicated value unexpected, ``mostly`` honoured), at Arrow speed. Great Expectations
itself still runs on a sample of every page and must agree (:mod:`quality.checks`).
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from quality.exceptions import UnsupportedExpectation
from quality.expectations import Rule


def _scalar(value, typ: pa.DataType) -> pa.Scalar:
    if pa.types.is_decimal(typ):
        return pa.scalar(Decimal(str(value)), pa.decimal128(38, max(typ.scale, 6)))
    if pa.types.is_integer(typ) and float(value).is_integer():
        return pa.scalar(int(value), pa.int64())
    return pa.scalar(value)


def _between(values: pa.Array, lo, hi, strict_lo: bool, strict_hi: bool) -> pa.Array:
    ok = None
    if lo is not None:
        s = _scalar(lo, values.type)
        ok = (pc.greater if strict_lo else pc.greater_equal)(values, s)
    if hi is not None:
        s = _scalar(hi, values.type)
        upper = (pc.less if strict_hi else pc.less_equal)(values, s)
        ok = upper if ok is None else pc.and_(ok, upper)
    return ok


def unexpected_mask(rule: Rule, column: pa.Array) -> pa.Array:
    """True where a row is unexpected for ``rule`` (never null)."""
    kind, kw = rule.type, rule.kwargs
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if kind == "expect_column_values_to_not_be_null":
        return pc.is_null(column)
    if kind == "expect_column_values_to_match_regex":
        ok = pc.match_substring_regex(pc.cast(column, pa.string()), kw["regex"])
    elif kind == "expect_column_values_to_be_in_set":
        ok = pc.is_in(column, value_set=pa.array(list(kw["value_set"]), column.type))
    elif kind == "expect_column_values_to_be_between":
        ok = _between(
            column,
            kw.get("min_value"),
            kw.get("max_value"),
            kw.get("strict_min", False),
            kw.get("strict_max", False),
        )
    elif kind == "expect_column_value_lengths_to_be_between":
        ok = _between(
            pc.utf8_length(column),
            kw.get("min_value"),
            kw.get("max_value"),
            kw.get("strict_min", False),
            kw.get("strict_max", False),
        )
    elif kind == "expect_column_values_to_be_unique":
        counts = pc.value_counts(column)
        repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        ok = pc.invert(pc.is_in(column, value_set=repeated))
    else:
        raise UnsupportedExpectation(
            f"{kind} has no vectorized evaluation: add it to quality/vectorized.py or keep it out of the suite"
        )
    if ok is None:  # between with neither bound: everything is expected
        return pa.array([False] * len(column))
    # Great Expectations leaves nulls out of every map expectation but not-null
    return pc.and_(pc.is_valid(column), pc.invert(pc.fill_null(ok, False)))


def evaluate_rules(rules: list[Rule], rows: pa.Table) -> tuple[dict[int, list[str]], list[str]]:
    """(failed row position → labels of the rules it failed, rules failed without row positions)."""
    failed: dict[int, list[str]] = {}
    batch_failures: list[str] = []
    n = rows.num_rows
    for rule in rules:
        if rule.column not in rows.column_names:
            batch_failures.append(rule.label)
            continue
        mask = unexpected_mask(rule, rows.column(rule.column))
        bad = pc.indices_nonzero(mask)
        if not len(bad):
            continue
        mostly = rule.kwargs.get("mostly", 1)
        counted = (
            n
            if rule.type == "expect_column_values_to_not_be_null"
            else n - rows.column(rule.column).null_count
        )
        if mostly < 1 and counted and 1 - len(bad) / counted >= mostly:
            continue
        for i in bad.to_pylist():
            failed.setdefault(i, []).append(rule.label)
    return failed, batch_failures
