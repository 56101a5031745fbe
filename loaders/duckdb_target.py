"""The embedded provincial database: a DuckDB file (the default target)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from loaders.exceptions import LoadError
from loaders.schema import ddl_statements
from loaders.target import ProvincialTarget, ident


class DuckDBTarget(ProvincialTarget):
    """DuckDB reads Arrow tables in place, so staging is a registration, not a copy."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self.url = f"duckdb:///{self.path}"
        try:
            # Attached under a fixed alias: a file named province.duckdb would otherwise make the
            # catalog "province" and the schema "province" ambiguous.
            self.con = duckdb.connect()
            escaped = self.path.replace("'", "''")
            self.con.execute(f"ATTACH '{escaped}' AS provincial_db")
            self.con.execute("USE provincial_db")
        except duckdb.Error as exc:
            raise LoadError(f"cannot open the provincial database {self.path}: {exc}") from exc

    def execute(self, sql, params=()):
        return self.con.execute(sql, list(params)) if params else self.con.execute(sql)

    def fetch_arrow(self, sql, params=()):
        if params:
            named = sql
            values = {}
            for i, p in enumerate(params):
                named = named.replace("?", f"$p{i}", 1)
                values[f"p{i}"] = p
            return self.con.sql(named, params=values).to_arrow_table()
        return self.con.sql(sql).to_arrow_table()

    def _rowcount(self, sql: str) -> int:
        return int(self.con.execute(sql).fetchone()[0])

    def stage(self, name: str, rows: pa.Table, like: str | None = None) -> None:
        self.con.register(f"{name}_arrow", rows)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        finally:
            self.con.unregister(f"{name}_arrow")

    def insert_new(self, table: str, rows: pa.Table, payload=None) -> int | None:
        """Insert from the Arrow table in place; DuckDB has no savepoints, so rows already there are skipped."""
        self.con.register("new_rows_arrow", rows)
        try:
            cols = ", ".join(ident(c) for c in rows.column_names)
            return int(
                self.con.execute(
                    f"INSERT INTO {table} ({cols}) SELECT {cols} FROM new_rows_arrow ON CONFLICT DO NOTHING"
                ).fetchone()[0]
            )
        finally:
            self.con.unregister("new_rows_arrow")

    def ensure_schema(self) -> None:
        for statement in ddl_statements("duckdb"):
            self.con.execute(statement)

    def close(self) -> None:
        self.con.close()
