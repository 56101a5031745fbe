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


def routing_select(rules: PartitionRules, schema: str, persons: str) -> str:
    """SQL selecting (id_number, partition_code, new_partition) for the persons ``persons`` (an SQL set of ID numbers).

    One pass: each rule's enrolment conditions become a flag aggregated per person over the
    production enrolments (joined with the enrolment's own city record of its employer), and a CASE
    over the flags picks the first rule that matches. A correlated EXISTS per person and rule cost
    seconds per 40,000 persons; this costs one hash join and one aggregate.
    """
    flags, whens = [], []
    for i, rule in enumerate(rules.rules):
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
            enrol.append(f"m.employer_type IN ({_in(rule.any_employer_type)})")
        conds = []
        if rule.source_city:
            conds.append(f"p.source_city IN ({_in(rule.source_city)})")
        if enrol:
            flags.append(f"bool_or({' OR '.join(enrol)}) AS _r{i}")
            conds.append(f"f._r{i}")
        if conds:
            whens.append(f"WHEN {' OR '.join(conds)} THEN '{rule.partition}'")
    case = f"CASE {' '.join(whens)} ELSE '{rules.default}' END"
    person = (
        f"SELECT p.id_number, p.partition_code, {{case}} AS new_partition FROM {schema}.person p {{join}} "
        f"WHERE p.partition_code <> '{rules.test_partition}' AND p.id_number IN ({persons})"
    )
    if not flags:
        return person.format(case=case, join="")
    aggregate = (
        f"SELECT e.id_number, {', '.join(flags)} FROM {schema}.enrolment e "
        f"LEFT JOIN {schema}.employer_xref m ON m.scope = 'P' AND m.source_city = e.source_city "
        f"AND m.employer_no = e.employer_no "
        f"WHERE e.partition_code <> '{rules.test_partition}' AND e.id_number IN ({persons}) GROUP BY e.id_number"
    )
    return person.format(case=case, join=f"LEFT JOIN ({aggregate}) f ON f.id_number = p.id_number")
