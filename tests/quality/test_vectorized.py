"""The vectorized suite evaluation must give Great Expectations' own verdict, row for row."""

import datetime as dt

import pyarrow as pa
import pytest

from quality.checks import BatchChecker, CheckResult, PageChecker
from quality.exceptions import UnsupportedExpectation
from quality.expectations import Rule, rules_for
from quality.vectorized import evaluate_rules, unexpected_mask
from tests.rows import contribution_row
from transforms.normalize import unified_schema


def _contribution(key, **kw):
    return contribution_row(key, city="daqing", **kw)


def _person(no, id_number="11010519491231002X", name="张三", sex="1", division="230100"):
    return {
        "source_city": "daqing",
        "source_person_no": no,
        "id_number": id_number,
        "name": name,
        "sex": sex,
        "birth_date": dt.date(1949, 12, 31),
        "division_code": division,
    }


BAD_CONTRIBUTIONS = [
    _contribution("1"),
    _contribution("2", id_number="11010519491231002x"),  # lower-case check letter
    _contribution("3", base="-0.01"),  # negative base
    _contribution("4", insurance="999", period=300001),  # three expectations at once
    _contribution("5", base=None),  # null base: not-null fails, between ignores the null
    _contribution("6", period=190001),  # the lower bound itself is expected
    _contribution("7", period=209913),
    _contribution("8"),
    _contribution("8"),  # a key twice: both copies are unexpected
    _contribution("9", id_number=None),
]


@pytest.fixture(scope="module")
def gx_checker():
    """Great Expectations itself, on every row."""
    return BatchChecker()


def test_contribution_verdicts_equal_great_expectations(gx_checker):
    rows = pa.Table.from_pylist(BAD_CONTRIBUTIONS, schema=unified_schema("contribution").with_metadata({}))
    failed, batch = evaluate_rules(rules_for("contribution"), rows)
    gx = gx_checker.check("contribution", rows)
    assert {i: sorted(v) for i, v in failed.items()} == {i: sorted(v) for i, v in gx.failed_rows.items()}
    assert batch == gx.batch_failures == []
    assert sorted(failed) == [1, 2, 3, 4, 6, 7, 8, 9]
    assert sorted(failed[3]) == [
        "expect_column_values_to_be_between(accounting_period)",
        "expect_column_values_to_be_between(fee_period)",
        "expect_column_values_to_be_in_set(insurance_type)",
    ]
    assert failed[4] == ["expect_column_values_to_not_be_null(contribution_base)"]
    assert failed[7] == failed[8] == ["expect_column_values_to_be_unique(source_key)"]
    assert failed[9] == ["expect_column_values_to_not_be_null(id_number)"]


def test_person_verdicts_equal_great_expectations(gx_checker):
    people = [
        _person("P1"),
        _person("P2", id_number="230103198001011234", name=""),  # empty name: length below 1
        _person("P3", id_number="230103198001011235", name="名" * 51),
        _person("P4", id_number="230103198001011236", sex="男"),
        _person("P5", id_number="230103198001011237", division="2301"),
        _person("P6"),  # the same ID number as P1
        _person("P7", id_number="230103198001011238", division=None),  # null division: ignored by the regex
    ]
    schema = unified_schema("person")
    rows = pa.Table.from_pylist(people, schema=pa.schema([f.with_nullable(True) for f in schema]))
    failed, _ = evaluate_rules(rules_for("person"), rows)
    gx = gx_checker.check("person", rows)
    assert {i: sorted(v) for i, v in failed.items()} == {i: sorted(v) for i, v in gx.failed_rows.items()}
    assert sorted(failed) == [0, 1, 2, 3, 4, 5]
    assert failed[0] == failed[5] == ["expect_column_values_to_be_unique(id_number)"]


def test_mostly_lets_a_share_of_rows_through():
    column = pa.array(["a", "b", "c", None, "x"])
    strict = Rule("expect_column_values_to_be_in_set", "c", {"value_set": ["a", "b", "c"]})
    assert unexpected_mask(strict, column).to_pylist() == [False, False, False, False, True]
    lenient = Rule("expect_column_values_to_be_in_set", "c", {"value_set": ["a", "b", "c"], "mostly": 0.7})
    failed, _ = evaluate_rules([lenient], pa.table({"c": column}))
    assert failed == {}  # 3 of 4 non-null values expected: 0.75 >= 0.7
    stricter = Rule("expect_column_values_to_be_in_set", "c", {"value_set": ["a", "b", "c"], "mostly": 0.8})
    assert evaluate_rules([stricter], pa.table({"c": column}))[0] == {
        4: ["expect_column_values_to_be_in_set(c)"]
    }


def test_a_rule_without_a_vectorized_form_is_refused():
    odd = Rule("expect_column_mean_to_be_between", "c", {"min_value": 0, "max_value": 1})
    with pytest.raises(UnsupportedExpectation, match="expect_column_mean_to_be_between"):
        unexpected_mask(odd, pa.array([1]))


def test_every_rule_has_a_great_expectations_twin():
    from quality.expectations import suite_for

    for entity in ("person", "employer", "enrolment", "contribution", "account"):
        suite = suite_for(entity)
        assert [e.expectation_type for e in suite.expectations] == [r.type for r in rules_for(entity)]


def test_page_checker_agrees_with_great_expectations_on_its_sample(gx_checker):
    rows = pa.Table.from_pylist(
        BAD_CONTRIBUTIONS * 30, schema=unified_schema("contribution").with_metadata({})
    )
    page = PageChecker(sample_rows=40, gx=gx_checker)
    result = page.check("contribution", rows)
    assert result.batch_failures == []
    # every copy of each key is now a duplicate: every row fails uniqueness
    assert len(result.failed_rows) == rows.num_rows


def test_page_checker_reports_a_disagreement(gx_checker):
    class Lying:
        def check(self, entity, rows):
            return CheckResult(failed_rows={0: ["made_up(x)"]})

    rows = pa.Table.from_pylist(
        BAD_CONTRIBUTIONS[:1], schema=unified_schema("contribution").with_metadata({})
    )
    result = PageChecker(sample_rows=10, gx=Lying()).check("contribution", rows)
    assert result.batch_failures == [
        "contribution: great_expectations disagrees with the vectorized suite on 1 of 1 sampled rows (page 1 row 0)"
    ]
