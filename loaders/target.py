"""The provincial database behind one interface, for DuckDB (embedded default) and PostgreSQL.

The merge logic is written once in SQL both engines accept; an engine
subclass only says how to connect, how to stage an Arrow table (DuckDB reads
Arrow directly, PostgreSQL takes COPY) and how to bind parameters. Each
applied page is one transaction (rows, quarantine rows and the ledger
together), and every write is an upsert on the unified key, so a re-run of
the same data leaves the same database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa

from loaders.exceptions import LoadError
from loaders.schema import ENTITY_TABLES, SCHEMA, load_batch


@dataclass(frozen=True)
class ApplyResult:
    inserted: int
    updated: int
    unchanged: int
    rejected: pa.Table  # rows refused by the key check, with a 'reason' column


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_RUN_QUARANTINE = "run_quarantine"


class ProvincialTarget:
    """Engine-neutral merge, quarantine and ledger; subclasses provide connection and staging."""

    url: str
    #: parameter marker of the engine's DB-API
    marker = "?"

    # -- engine hooks -----------------------------------------------------------------------
    def execute(self, sql: str, params: list | tuple = ()) -> Any:
        raise NotImplementedError

    def fetchall(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        return self.execute(sql, params).fetchall()

    def fetch_arrow(self, sql: str, params: list | tuple = ()) -> pa.Table:
        raise NotImplementedError

    def stage(self, name: str, rows: pa.Table, like: str | None = None) -> None:
        """Create temp table ``name`` holding ``rows`` (columns and types of ``like`` when given)."""
        raise NotImplementedError

    def ensure_schema(self) -> None:
        raise NotImplementedError

    def begin(self) -> None:
        self.execute("BEGIN")

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        self.execute("ROLLBACK")

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _p(self, sql: str) -> str:
        return sql if self.marker == "?" else sql.replace("?", self.marker)

    # -- entity rows ------------------------------------------------------------------------
    def apply(self, entity: str, rows: pa.Table, *, source_key_columns: tuple[str, ...] = ()) -> ApplyResult:
        """Upsert ``rows`` into ``province.<entity>``; call between :meth:`begin` and :meth:`commit`.

        Rows whose unified key is already held by a different source record (or
        appears twice in the batch) are refused, not overwritten: they come back
        in ``rejected`` for quarantine.
        """
        table = ENTITY_TABLES[entity]
        pk = [c.name for c in table.primary_key.columns]
        cols = [c.name for c in table.columns]
        name = f"{SCHEMA}.{entity}"
        on = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in pk)
        pk_list = ", ".join(ident(k) for k in pk)
        col_list = ", ".join(ident(c) for c in cols)
        try:
            self.stage("staged_all", rows, like=name)
            self.execute("DROP TABLE IF EXISTS staged")
            self.execute(
                f"CREATE TEMP TABLE staged AS SELECT *, row_number() OVER (PARTITION BY {pk_list}) AS _dup FROM staged_all"
            )
            conds = ["s._dup > 1"]
            if source_key_columns:
                differs = " OR ".join(f"t.{ident(k)} IS DISTINCT FROM s.{ident(k)}" for k in source_key_columns)
                conds.append(f"EXISTS (SELECT 1 FROM {name} t WHERE {on} AND ({differs}))")
            where_bad = " OR ".join(conds)
            rejected = self.fetch_arrow(
                f"SELECT {', '.join('s.' + ident(c) for c in cols)}, "
                "CASE WHEN s._dup > 1 THEN 'same key twice in one batch' "
                "ELSE 'key already held by another source record' END AS reason "
                f"FROM staged s WHERE {where_bad}"
            )
            if rejected.num_rows == 0:
                rejected = pa.Table.from_pylist([], schema=rows.schema.append(pa.field("reason", pa.string())))
            self.execute(f"DELETE FROM staged s WHERE {where_bad}")
            same = " AND ".join(f"t.{ident(c)} IS NOT DISTINCT FROM s.{ident(c)}" for c in cols)
            counts = self.fetchall(
                f"SELECT count(*) FILTER (WHERE t.{ident(pk[0])} IS NULL), "
                f"count(*) FILTER (WHERE t.{ident(pk[0])} IS NOT NULL AND NOT ({same})), "
                f"count(*) FILTER (WHERE t.{ident(pk[0])} IS NOT NULL AND ({same})) "
                f"FROM staged s LEFT JOIN {name} t ON {on}"
            )[0]
            non_pk = [c for c in cols if c not in pk]
            update = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in non_pk)
            # Only rows that differ are written: an unchanged row is not touched at all.
            changed = " OR ".join(f"{name}.{ident(c)} IS DISTINCT FROM excluded.{ident(c)}" for c in non_pk)
            self.execute(
                f"INSERT INTO {name} ({col_list}) SELECT {col_list} FROM staged "
                f"ON CONFLICT ({pk_list}) DO UPDATE SET {update} WHERE {changed}"
            )
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"applying {rows.num_rows} {entity} rows to {self.url} failed: {exc}") from exc
        return ApplyResult(inserted=counts[0], updated=counts[1], unchanged=counts[2], rejected=rejected)

    def apply_persons(self, rows: pa.Table) -> ApplyResult:
        """Record each source person in ``person_xref`` and re-derive the consolidated ``person`` rows they touch.

        The consolidated row takes the attributes of the first source record in
        (source_city, source_person_no) order, so the outcome is the same whatever
        order cities are loaded in. An ID number corrected at source moves the record.
        """
        self.stage("staged_person_ids", rows.select(["id_number", "source_city", "source_person_no"]))
        self.execute("DROP TABLE IF EXISTS affected_ids")
        self.execute(
            "CREATE TEMP TABLE affected_ids AS SELECT id_number FROM staged_person_ids UNION "
            f"SELECT x.id_number FROM {SCHEMA}.person_xref x JOIN staged_person_ids k "
            "ON x.source_city = k.source_city AND x.source_person_no = k.source_person_no"
        )
        result = self.apply("person_xref", rows)
        self.consolidate_persons()
        return result

    def consolidate_persons(self) -> None:
        """Re-derive ``person`` for the ID numbers in temp table ``affected_ids``."""
        cols = [c.name for c in ENTITY_TABLES["person"].columns]
        col_list = ", ".join(ident(c) for c in cols)
        update = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in cols if c != "id_number")
        changed = " OR ".join(
            f"{SCHEMA}.person.{ident(c)} IS DISTINCT FROM excluded.{ident(c)}" for c in cols if c != "id_number"
        )
        self.execute(
            f"DELETE FROM {SCHEMA}.person WHERE id_number IN (SELECT id_number FROM affected_ids) "
            f"AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.person_xref x WHERE x.id_number = {SCHEMA}.person.id_number)"
        )
        self.execute(
            f"INSERT INTO {SCHEMA}.person ({col_list}) SELECT {col_list} FROM ("
            f" SELECT x.*, row_number() OVER (PARTITION BY x.id_number ORDER BY x.source_city, x.source_person_no) AS rn"
            f" FROM {SCHEMA}.person_xref x WHERE x.id_number IN (SELECT id_number FROM affected_ids)) w WHERE rn = 1 "
            f"ON CONFLICT (id_number) DO UPDATE SET {update} WHERE {changed}"
        )

    def xref_count(self, city: str) -> int:
        return int(
            self.fetchall(self._p(f"SELECT count(*) FROM {SCHEMA}.person_xref WHERE source_city = ?"), [city])[0][0]
        )

    def quarantine(self, rows: pa.Table, batch_id: str) -> None:
        """Record quarantine rows; a row already recorded keeps its first batch id."""
        if rows.num_rows == 0:
            return
        self.stage("staged_q", rows)
        self.execute(
            self._p(f"INSERT INTO {SCHEMA}.quarantine SELECT *, ? FROM staged_q ON CONFLICT DO NOTHING"), [batch_id]
        )
        self._ensure_run_quarantine()
        self.execute(f"INSERT INTO {_RUN_QUARANTINE} SELECT source_city, entity, source_key, reason_code FROM staged_q")

    def _ensure_run_quarantine(self) -> None:
        self.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_RUN_QUARANTINE} "
            "(source_city VARCHAR, entity VARCHAR, source_key VARCHAR, reason_code VARCHAR)"
        )

    def drop_stale_quarantine(self, city: str, entity: str) -> int:
        """After a full extract: quarantine rows the source no longer produces are removed."""
        self._ensure_run_quarantine()
        stale = self.fetchall(
            self._p(
                f"SELECT count(*) FROM {SCHEMA}.quarantine q WHERE source_city = ? AND entity = ? AND NOT EXISTS "
                f"(SELECT 1 FROM {_RUN_QUARANTINE} r WHERE r.source_city = q.source_city AND r.entity = q.entity "
                "AND r.source_key = q.source_key AND r.reason_code = q.reason_code)"
            ),
            [city, entity],
        )[0][0]
        if stale:
            self.execute(
                self._p(
                    f"DELETE FROM {SCHEMA}.quarantine q WHERE source_city = ? AND entity = ? AND NOT EXISTS "
                    f"(SELECT 1 FROM {_RUN_QUARANTINE} r WHERE r.source_city = q.source_city AND r.entity = q.entity "
                    "AND r.source_key = q.source_key AND r.reason_code = q.reason_code)"
                ),
                [city, entity],
            )
        self.execute(self._p(f"DELETE FROM {_RUN_QUARANTINE} WHERE source_city = ? AND entity = ?"), [city, entity])
        return stale

    # -- lookups, ledger, report queries ----------------------------------------------------
    def person_index(self, city: str) -> pa.Table:
        """Source person number → ID number for the city's loaded persons."""
        return self.fetch_arrow(
            self._p(f"SELECT source_person_no, id_number FROM {SCHEMA}.person_xref WHERE source_city = ?"), [city]
        )

    def entity_totals(self, entity: str, city: str, money: list[str]) -> tuple[int, Decimal]:
        expr = " + ".join(f"coalesce(sum({ident(m)}), 0)" for m in money) or "0"
        n, total = self.fetchall(
            self._p(f"SELECT count(*), CAST({expr} AS DECIMAL(38,2)) FROM {SCHEMA}.{entity} WHERE source_city = ?"),
            [city],
        )[0]
        return int(n), Decimal(total)

    def quarantine_count(self, entity: str, city: str) -> int:
        return int(
            self.fetchall(
                self._p(f"SELECT count(*) FROM {SCHEMA}.quarantine WHERE source_city = ? AND entity = ?"), [city, entity]
            )[0][0]
        )

    def quarantine_summary(self, city: str) -> list[tuple[str, str, int]]:
        return [
            (e, r, int(n))
            for e, r, n in self.fetchall(
                self._p(
                    f"SELECT entity, reason_code, count(*) FROM {SCHEMA}.quarantine WHERE source_city = ? "
                    "GROUP BY entity, reason_code ORDER BY 1, 2"
                ),
                [city],
            )
        ]

    def quarantine_samples(self, city: str, per_reason: int = 5) -> list[tuple]:
        return self.fetchall(
            self._p(
                "SELECT entity, reason_code, source_key, reason_detail, original_values FROM ("
                " SELECT q.*, row_number() OVER (PARTITION BY entity, reason_code ORDER BY source_key) AS rn"
                f" FROM {SCHEMA}.quarantine q WHERE source_city = ?) x WHERE rn <= ? ORDER BY 1, 2, 3"
            ),
            [city, per_reason],
        )

    def consolidation_findings(self, limit: int = 20) -> dict[str, list[tuple]]:
        """What consolidation leaves for a person to review (never merged automatically).

        - ``attribute_conflicts``: one ID number, source records that disagree on name, sex or birth date;
        - ``probable_duplicates``: same name, birth date and sex under different ID numbers;
        - ``double_payments``: the same person, insurance type and month paid in two or more cities.
        """
        s = SCHEMA
        return {
            "attribute_conflicts": self.fetchall(
                f"SELECT id_number, count(*), count(DISTINCT name), count(DISTINCT sex), count(DISTINCT birth_date) "
                f"FROM {s}.person_xref GROUP BY id_number HAVING count(DISTINCT name) > 1 OR count(DISTINCT sex) > 1 "
                f"OR count(DISTINCT birth_date) > 1 ORDER BY 1 LIMIT {int(limit)}"
            ),
            "probable_duplicates": self.fetchall(
                f"SELECT name, birth_date, sex, count(DISTINCT id_number) FROM {s}.person "
                f"GROUP BY name, birth_date, sex HAVING count(DISTINCT id_number) > 1 ORDER BY 1, 2 LIMIT {int(limit)}"
            ),
            "double_payments": self.fetchall(
                f"SELECT id_number, insurance_type, fee_period, count(DISTINCT source_city) FROM {s}.contribution "
                f"GROUP BY id_number, insurance_type, fee_period HAVING count(DISTINCT source_city) > 1 "
                f"ORDER BY 1, 2, 3 LIMIT {int(limit)}"
            ),
        }

    def last_watermark(self, city: str, entity: str) -> str | None:
        rows = self.fetchall(
            self._p(
                f"SELECT watermark FROM {SCHEMA}.load_batch WHERE source_city = ? AND entity = ? "
                "AND status = 'committed' AND watermark IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
            ),
            [city, entity],
        )
        return rows[0][0] if rows else None

    def record_batch(self, row: dict) -> None:
        cols = [c.name for c in load_batch.columns]
        values = [row.get(c) for c in cols]
        marks = ", ".join("?" for _ in cols)
        update = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ("batch_id", "entity"))
        self.execute(
            self._p(
                f"INSERT INTO {SCHEMA}.load_batch ({', '.join(cols)}) VALUES ({marks}) "
                f"ON CONFLICT (batch_id, entity) DO UPDATE SET {update}"
            ),
            values,
        )
