"""The embedded provincial database: DuckDB with the unified schema.

Each applied page is one transaction (rows, quarantine rows and the ledger
together), and every write is an upsert on the unified key, so a re-run of
the same data leaves the same database.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from loaders.exceptions import LoadError
from loaders.schema import ENTITY_TABLES, SCHEMA, load_batch, metadata


@dataclass(frozen=True)
class ApplyResult:
    inserted: int
    updated: int
    unchanged: int
    rejected: pa.Table  # rows refused by the key check, with a 'reason' column


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDBTarget:
    """Apply unified batches to a DuckDB file (or ``:memory:``)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            self.con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise LoadError(f"cannot open the provincial database {self.path}: {exc}") from exc

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBTarget:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------
    def ensure_schema(self) -> None:
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        for table in metadata.sorted_tables:
            ddl = str(CreateTable(table, if_not_exists=True).compile(dialect=postgresql.dialect()))
            self.con.execute(ddl)
            for col in table.columns:
                if col.comment:
                    comment = col.comment.replace("'", "''")
                    self.con.execute(f"COMMENT ON COLUMN {SCHEMA}.{table.name}.{_ident(col.name)} IS '{comment}'")

    # -- entity rows ----------------------------------------------------------------------
    def apply(self, entity: str, rows: pa.Table, *, source_key_columns: tuple[str, ...] = ()) -> ApplyResult:
        """Upsert ``rows`` into ``province.<entity>``; call inside :meth:`transaction`.

        Rows whose unified key is already held by a different source record (or
        appears twice in the batch) are refused, not overwritten: they come back
        in ``rejected`` for quarantine.
        """
        table = ENTITY_TABLES[entity]
        pk = [c.name for c in table.primary_key.columns]
        cols = [c.name for c in table.columns]
        name = f"{SCHEMA}.{entity}"
        self.con.register("staged_all", rows)
        try:
            on = " AND ".join(f"t.{_ident(k)} = s.{_ident(k)}" for k in pk)
            pk_list = ", ".join(_ident(k) for k in pk)
            rejected = pa.table({**{c: pa.array([], rows.schema.field(c).type) for c in cols}, "reason": pa.array([], pa.string())})
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE staged AS SELECT *, row_number() OVER (PARTITION BY {pk_list}) AS _dup FROM staged_all"
            )
            conds = ["s._dup > 1"]
            if source_key_columns:
                differs = " OR ".join(f"t.{_ident(k)} IS DISTINCT FROM s.{_ident(k)}" for k in source_key_columns)
                conds.append(f"EXISTS (SELECT 1 FROM {name} t WHERE {on} AND ({differs}))")
            where_bad = " OR ".join(conds)
            rejected = self.con.sql(
                f"SELECT {', '.join('s.' + _ident(c) for c in cols)}, "
                f"CASE WHEN s._dup > 1 THEN 'same key twice in one batch' ELSE 'key already held by another source record' END AS reason "
                f"FROM staged s WHERE {where_bad}"
            ).to_arrow_table()
            self.con.execute(f"DELETE FROM staged s WHERE {where_bad}")
            col_list = ", ".join(_ident(c) for c in cols)
            same = " AND ".join(f"t.{_ident(c)} IS NOT DISTINCT FROM s.{_ident(c)}" for c in cols)
            counts = self.con.execute(
                f"SELECT count(*) FILTER (WHERE t.{_ident(pk[0])} IS NULL), "
                f"count(*) FILTER (WHERE t.{_ident(pk[0])} IS NOT NULL AND NOT ({same})), "
                f"count(*) FILTER (WHERE t.{_ident(pk[0])} IS NOT NULL AND ({same})) "
                f"FROM staged s LEFT JOIN {name} t ON {on}"
            ).fetchone()
            non_pk = [c for c in cols if c not in pk]
            update = ", ".join(f"{_ident(c)} = excluded.{_ident(c)}" for c in non_pk)
            self.con.execute(
                f"INSERT INTO {name} ({col_list}) SELECT {col_list} FROM staged "
                f"ON CONFLICT ({pk_list}) DO UPDATE SET {update}"
            )
        except duckdb.Error as exc:
            raise LoadError(f"applying {rows.num_rows} {entity} rows failed: {exc}") from exc
        finally:
            self.con.unregister("staged_all")
        return ApplyResult(inserted=counts[0], updated=counts[1], unchanged=counts[2], rejected=rejected)

    def quarantine(self, rows: pa.Table, batch_id: str) -> None:
        """Record quarantine rows; a row already recorded keeps its first batch id."""
        if rows.num_rows == 0:
            return
        self.con.register("staged_q", rows)
        try:
            self.con.execute(
                f"INSERT INTO {SCHEMA}.quarantine SELECT *, ? FROM staged_q ON CONFLICT DO NOTHING", [batch_id]
            )
            self.con.execute("CREATE TEMP TABLE IF NOT EXISTS run_quarantine (source_city VARCHAR, entity VARCHAR, source_key VARCHAR, reason_code VARCHAR)")
            self.con.execute("INSERT INTO run_quarantine SELECT source_city, entity, source_key, reason_code FROM staged_q")
        finally:
            self.con.unregister("staged_q")

    def drop_stale_quarantine(self, city: str, entity: str) -> int:
        """After a full extract: quarantine rows the source no longer produces are gone."""
        self.con.execute("CREATE TEMP TABLE IF NOT EXISTS run_quarantine (source_city VARCHAR, entity VARCHAR, source_key VARCHAR, reason_code VARCHAR)")
        return self.con.execute(
            f"DELETE FROM {SCHEMA}.quarantine q WHERE source_city = ? AND entity = ? AND NOT EXISTS "
            "(SELECT 1 FROM run_quarantine r WHERE r.source_city = q.source_city AND r.entity = q.entity "
            "AND r.source_key = q.source_key AND r.reason_code = q.reason_code)",
            [city, entity],
        ).fetchone()[0]

    # -- lookups and ledger ---------------------------------------------------------------
    def person_index(self, city: str) -> pa.Table:
        """Source person number → ID number for the city's loaded persons."""
        return self.con.sql(
            f"SELECT source_person_no, id_number FROM {SCHEMA}.person WHERE source_city = $city", params={"city": city}
        ).to_arrow_table()

    def entity_totals(self, entity: str, city: str, money: list[str]) -> tuple[int, Decimal]:
        expr = " + ".join(f"coalesce(sum({_ident(m)}), 0)" for m in money) or "0"
        n, total = self.con.execute(
            f"SELECT count(*), CAST({expr} AS DECIMAL(38,2)) FROM {SCHEMA}.{entity} WHERE source_city = ?", [city]
        ).fetchone()
        return n, Decimal(total)

    def quarantine_count(self, entity: str, city: str) -> int:
        return self.con.execute(
            f"SELECT count(*) FROM {SCHEMA}.quarantine WHERE source_city = ? AND entity = ?", [city, entity]
        ).fetchone()[0]

    def record_batch(self, row: dict) -> None:
        cols = [c.name for c in load_batch.columns]
        values = [row.get(c) for c in cols]
        col_list = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        update = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ("batch_id", "entity"))
        self.con.execute(
            f"INSERT INTO {SCHEMA}.load_batch ({col_list}) VALUES ({marks}) ON CONFLICT (batch_id, entity) DO UPDATE SET {update}",
            values,
        )

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self.con.execute("COMMIT")

    def rollback(self) -> None:
        self.con.execute("ROLLBACK")
