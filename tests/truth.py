"""Compare a provincial target with the generator's ground truth, entity by entity, field by field."""

from __future__ import annotations

import duckdb

from loaders.schema import ENTITY_TABLES

ENTITIES = ["employer", "employer_xref", "person", "person_xref", "enrolment", "contribution", "account"]


def truth_rows(truth_db, table: str, cols: list[str], where: str = "") -> list[tuple]:
    with duckdb.connect(str(truth_db), read_only=True) as con:
        return sorted(
            con.execute(f"SELECT {', '.join(cols)} FROM truth.{table} {where}").fetchall(), key=repr
        )


def target_rows(target, table: str, cols: list[str], where: str = "") -> list[tuple]:
    return sorted(
        (tuple(r) for r in target.fetchall(f"SELECT {', '.join(cols)} FROM province.{table} {where}")),
        key=repr,
    )


def entity_columns(entity: str) -> list[str]:
    return [c.name for c in ENTITY_TABLES[entity].columns if not c.info.get("derived")]


def assert_entity_matches(target, truth_db, entity: str) -> int:
    cols = entity_columns(entity)
    got, want = target_rows(target, entity, cols), truth_rows(truth_db, entity, cols)
    assert len(got) == len(want) > 0, f"{entity}: {len(got)} rows loaded, {len(want)} expected"
    missing = sorted(set(want) - set(got), key=repr)[:5]
    extra = sorted(set(got) - set(want), key=repr)[:5]
    assert not missing and not extra, f"{entity}: missing {missing} extra {extra}"
    assert got == want
    return len(got)


def assert_quarantine_matches(target, truth_db) -> None:
    cols = ["source_city", "entity", "source_key", "reason_code"]
    got, want = target_rows(target, "quarantine", cols), truth_rows(truth_db, "quarantine", cols)
    assert got == want, (
        f"quarantine: missing {sorted(set(want) - set(got))[:5]} extra {sorted(set(got) - set(want))[:5]}"
    )


def quarantine_diff(target, truth_db) -> tuple[list, list]:
    cols = ["source_city", "entity", "source_key", "reason_code"]
    got, want = set(target_rows(target, "quarantine", cols)), set(truth_rows(truth_db, "quarantine", cols))
    return sorted(want - got, key=repr)[:10], sorted(got - want, key=repr)[:10]
