"""The expectation suites, one per unified entity: what every loaded row must satisfy.

These restate the provincial rules independently of the transform code, so a
transform bug surfaces as an expectation failure (and a quarantined row)
instead of a bad row in the central database. Each rule is a Great Expectations
expectation configuration (type and keyword arguments): :func:`suite_for` builds
the Great Expectations suite from them, and :mod:`quality.vectorized` evaluates the
same rules in Arrow without importing Great Expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ID_NUMBER = r"^\d{17}[\dX]$"
INSURANCE_TYPES = ["110", "120", "210", "310", "390", "391", "410", "510"]
PERIOD = {"min_value": 190001, "max_value": 209912}


@dataclass(frozen=True)
class Rule:
    """One expectation: its Great Expectations type and keyword arguments."""

    type: str
    column: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.type}({self.column})"


def _required(*columns: str) -> list[Rule]:
    return [Rule("expect_column_values_to_not_be_null", c) for c in columns]


def _regex(column: str, regex: str, **kw) -> Rule:
    return Rule("expect_column_values_to_match_regex", column, {"regex": regex, **kw})


def _in_set(column: str, values: list[str]) -> Rule:
    return Rule("expect_column_values_to_be_in_set", column, {"value_set": values})


def _between(column: str, **kw) -> Rule:
    return Rule("expect_column_values_to_be_between", column, kw)


def _unique(column: str) -> Rule:
    return Rule("expect_column_values_to_be_unique", column)


def rules_for(entity: str) -> list[Rule]:
    rules: list[Rule] = []
    if entity == "person":
        rules += _required("id_number", "name", "sex", "birth_date", "source_city", "source_person_no")
        rules += [
            _regex("id_number", ID_NUMBER),
            _unique("id_number"),
            _in_set("sex", ["1", "2", "9"]),
            Rule("expect_column_value_lengths_to_be_between", "name", {"min_value": 1, "max_value": 50}),
            _regex("division_code", r"^\d{6}$", mostly=1.0),
        ]
    elif entity == "employer":
        rules += _required("source_city", "employer_no", "name")
        rules += [_unique("employer_no")]
    elif entity == "enrolment":
        rules += _required("source_city", "id_number", "insurance_type")
        rules += [_regex("id_number", ID_NUMBER), _in_set("insurance_type", INSURANCE_TYPES)]
    elif entity == "contribution":
        rules += _required(
            "source_city",
            "source_key",
            "id_number",
            "insurance_type",
            "fee_period",
            "accounting_period",
            "contribution_base",
            "employer_due",
            "individual_due",
        )
        rules += [
            _regex("id_number", ID_NUMBER),
            _in_set("insurance_type", INSURANCE_TYPES),
            _between("fee_period", **PERIOD),
            _between("accounting_period", **PERIOD),
            _between("contribution_base", min_value=0),
            _unique("source_key"),
        ]
    elif entity == "account":
        rules += _required("source_city", "account_id", "id_number", "year")
        rules += [_regex("id_number", ID_NUMBER), _between("year", min_value=1990, max_value=2100)]
    return rules


def suite_for(entity: str):
    """The Great Expectations suite of ``entity`` (imports Great Expectations: call it where that is wanted)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    def expectation(rule: Rule):
        cls = getattr(gxe, "".join(part.capitalize() for part in rule.type.split("_")))
        return cls(column=rule.column, **rule.kwargs)

    return gx.ExpectationSuite(
        name=f"province.{entity}", expectations=[expectation(r) for r in rules_for(entity)]
    )
