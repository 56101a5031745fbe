"""Great Expectations suites, one per unified entity: what every loaded row must satisfy.

These restate the provincial rules independently of the transform code, so a
transform bug surfaces as an expectation failure (and a quarantined row)
instead of a bad row in the central database.
"""

from __future__ import annotations

import great_expectations as gx
import great_expectations.expectations as gxe

ID_NUMBER = r"^\d{17}[\dX]$"
INSURANCE_TYPES = ["110", "120", "210", "310", "390", "391", "410", "510"]
PERIOD = {"min_value": 190001, "max_value": 209912}


def _required(*columns: str) -> list:
    return [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def suite_for(entity: str) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name=f"province.{entity}")
    exps: list = []
    if entity == "person":
        exps += _required("id_number", "name", "sex", "birth_date", "source_city", "source_person_no")
        exps += [
            gxe.ExpectColumnValuesToMatchRegex(column="id_number", regex=ID_NUMBER),
            gxe.ExpectColumnValuesToBeUnique(column="id_number"),
            gxe.ExpectColumnValuesToBeInSet(column="sex", value_set=["1", "2", "9"]),
            gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1, max_value=50),
            gxe.ExpectColumnValuesToMatchRegex(column="division_code", regex=r"^\d{6}$", mostly=1.0),
        ]
    elif entity == "employer":
        exps += _required("source_city", "employer_no", "name")
        exps += [gxe.ExpectColumnValuesToBeUnique(column="employer_no")]
    elif entity == "enrolment":
        exps += _required("source_city", "id_number", "insurance_type")
        exps += [
            gxe.ExpectColumnValuesToMatchRegex(column="id_number", regex=ID_NUMBER),
            gxe.ExpectColumnValuesToBeInSet(column="insurance_type", value_set=INSURANCE_TYPES),
        ]
    elif entity == "contribution":
        exps += _required(
            "source_city", "source_key", "id_number", "insurance_type", "fee_period", "accounting_period",
            "contribution_base", "employer_due", "individual_due",
        )
        exps += [
            gxe.ExpectColumnValuesToMatchRegex(column="id_number", regex=ID_NUMBER),
            gxe.ExpectColumnValuesToBeInSet(column="insurance_type", value_set=INSURANCE_TYPES),
            gxe.ExpectColumnValuesToBeBetween(column="fee_period", **PERIOD),
            gxe.ExpectColumnValuesToBeBetween(column="accounting_period", **PERIOD),
            gxe.ExpectColumnValuesToBeBetween(column="contribution_base", min_value=0),
            gxe.ExpectColumnValuesToBeUnique(column="source_key"),
        ]
    elif entity == "account":
        exps += _required("source_city", "account_id", "id_number", "year")
        exps += [
            gxe.ExpectColumnValuesToMatchRegex(column="id_number", regex=ID_NUMBER),
            gxe.ExpectColumnValuesToBeBetween(column="year", min_value=1990, max_value=2100),
        ]
    for e in exps:
        suite.add_expectation(e)
    return suite
