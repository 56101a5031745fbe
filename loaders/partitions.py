"""Routing persons to the province's business partitions, from ``config/partitions.yml``.

The rules become one SQL CASE expression evaluated over each person and their
production enrolments, so routing is a set operation in the database, and the
same on DuckDB and PostgreSQL.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from loaders.exceptions import LoadError

CONFIG = Path(__file__).resolve().parent.parent / "config" / "partitions.yml"
BUSINESS = ("1", "2", "3", "4", "5")


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    partition: str = Field(pattern=r"^[1-5]$")
    name: str
    source_city: list[str] = []
    any_insurance_type: list[str] = []
    any_employer_type: list[str] = []
    any_enrolment_status: list[str] = []
    any_retired: list[str] = []  # enrolment.retired (AAC084) values


class PartitionRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    test_partition: str = "T"
    default: str = Field(pattern=r"^[1-5]$")
    rules: list[Rule]

    def provisional(self, city: str) -> str:
        """A new person's partition before their enrolments are known (city rules only)."""
        for rule in self.rules:
            if city in rule.source_city:
                return rule.partition
        return self.default


@cache
def partition_rules(path: Path = CONFIG) -> PartitionRules:
    try:
        return PartitionRules.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as exc:
        raise LoadError(f"{path}: invalid partition rules: {exc}") from exc


def _in(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def routing_case(rules: PartitionRules, schema: str) -> str:
    """SQL expression giving the partition of person ``p`` (alias) from production data."""
    whens = []
    for rule in rules.rules:
        conds = []
        if rule.source_city:
            conds.append(f"p.source_city IN ({_in(rule.source_city)})")
        enrol = []
        if rule.any_insurance_type:
            enrol.append(f"e.insurance_type IN ({_in(rule.any_insurance_type)})")
        if rule.any_enrolment_status:
            enrol.append(f"e.enrolment_status IN ({_in(rule.any_enrolment_status)})")
        if rule.any_retired:
            enrol.append(f"e.retired IN ({_in(rule.any_retired)})")
        if rule.any_employer_type:
            # the enrolment's own city record of its employer: a person's placement never depends on
            # which city's record of a shared employer the consolidated row took its attributes from
            enrol.append(
                f"EXISTS (SELECT 1 FROM {schema}.employer_xref m WHERE m.scope = 'P' AND m.source_city = e.source_city "
                f"AND m.employer_no = e.employer_no AND m.employer_type IN ({_in(rule.any_employer_type)}))"
            )
        if enrol:
            conds.append(
                f"EXISTS (SELECT 1 FROM {schema}.enrolment e WHERE e.partition_code <> '{rules.test_partition}' "
                f"AND e.id_number = p.id_number AND ({' OR '.join(enrol)}))"
            )
        if conds:
            whens.append(f"WHEN {' OR '.join(conds)} THEN '{rule.partition}'")
    return f"CASE {' '.join(whens)} ELSE '{rules.default}' END"
