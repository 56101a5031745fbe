"""The central provincial database: PostgreSQL, staged with COPY and merged in one transaction per page."""

from __future__ import annotations

import io

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from loaders.exceptions import LoadError
from loaders.schema import SCHEMA, ddl_statements, schema_fingerprint
from loaders.target import ProvincialTarget, ident


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PostgresTarget(ProvincialTarget):
    """COPY (CSV rendered by Arrow's C++ writer, exact decimals as text) into temp tables, then merge."""

    marker = "%s"

    def __init__(self, url: str):
        self.url = url.split("@")[-1]  # never keep credentials in what we print
        try:
            # JIT compiles every merge over the partition tree (~100 ms each) to save microseconds
            self.con = psycopg.connect(_psycopg_url(url), autocommit=True, options="-c jit=off")
        except psycopg.Error as exc:
            raise LoadError(f"cannot connect to the provincial database {self.url}: {exc}") from exc

    def execute(self, sql, params=()):
        return self.con.execute(sql, list(params) if params else None)

    def fetch_arrow(self, sql, params=()):
        """A text-valued result as an Arrow table, through COPY and Arrow's CSV reader.

        The lookups that use it (person index, partitions) return hundreds of thousands of rows: a
        Python tuple and dict per row would cost more than the query and stay in the process's heap.
        """
        params = list(params) if params else None
        names = [d.name for d in self.con.execute(f"SELECT * FROM ({sql}) q LIMIT 0", params).description]
        buf = io.BytesIO()
        with self.con.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
            for chunk in copy:
                buf.write(chunk)
        if not buf.tell():
            return pa.table({n: pa.array([], pa.string()) for n in names})
        buf.seek(0)
        return pacsv.read_csv(
            buf,
            read_options=pacsv.ReadOptions(column_names=names),
            # PostgreSQL's CSV writes NULL unquoted and the empty string quoted
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )

    def execute_by_key(self, sql, params=()):
        """Probe the key's index once per page row, whatever the statistics say (call inside a transaction).

        A page of 20,000 rows is compared with a 5M-row table in 0.3 s by index; with the table's
        statistics behind a bulk load the planner took a hash join over all of it instead (5 s).
        """
        self.con.execute("SET LOCAL enable_hashjoin = off")
        self.con.execute("SET LOCAL enable_mergejoin = off")
        try:
            return self.execute(sql, params)
        finally:
            self.con.execute("SET LOCAL enable_hashjoin = on")
            self.con.execute("SET LOCAL enable_mergejoin = on")

    def analyze(self, table: str) -> None:
        self.con.execute(f"ANALYZE {table}")

    def refresh_statistics(self, entity: str, written: int) -> None:
        """ANALYZE the tables routing and consolidation read when this run wrote more than autovacuum's own
        threshold of them (10 % + 50 rows of what the statistics last counted)."""
        tables = {
            "person": ("person_xref", "person"),
            "employer": ("employer_xref", "employer"),
            "enrolment": ("enrolment",),
            # the next run settles each page's earlier quarantine rows by key: with no statistics the
            # planner takes the city's quarantine for one row and hashes all of it for every page
            "quarantine": ("quarantine",),
        }.get(entity, ())
        for table in tables:
            counted = self.con.execute(
                "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' AND (c.relname = %s OR c.relname LIKE %s)",
                [SCHEMA, table, table.replace("_", "\\_") + "\\_p%"],
            ).fetchone()[0]
            if written > 50 + counted // 10:
                self.con.execute(f"ANALYZE {SCHEMA}.{table}")

    def _rowcount(self, sql: str) -> int:
        return self.con.execute(sql).rowcount

    def stage(self, name: str, rows: pa.Table, like: str | None = None) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {name}")
        if like:
            cols = ", ".join(ident(c) for c in rows.column_names)
            self.con.execute(f"CREATE TEMP TABLE {name} AS SELECT {cols} FROM {like} WITH NO DATA")
        else:
            defs = ", ".join(f"{ident(c)} TEXT" for c in rows.column_names)
            self.con.execute(f"CREATE TEMP TABLE {name} ({defs})")
        self._copy(name, rows)
        # temp tables have no statistics until analysed: without them the merge joins plan as nested loops
        self.con.execute(f"ANALYZE {name}")

    def encode(self, rows: pa.Table) -> memoryview:
        """Rows as CSV for COPY, rendered by Arrow's C++ writer (exact decimals as text)."""
        buf = io.BytesIO()
        pacsv.write_csv(rows, buf, pacsv.WriteOptions(include_header=False))
        return buf.getbuffer()

    def _copy(self, table: str, rows: pa.Table, csv: memoryview | None = None) -> None:
        cols = ", ".join(ident(c) for c in rows.column_names)
        with self.con.cursor().copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(self.encode(rows) if csv is None else csv)

    def insert_new(self, table: str, rows: pa.Table, payload: memoryview | None = None) -> int | None:
        """COPY straight into the (partitioned) table under a savepoint: all rows, or none when a key exists."""
        try:
            with self.con.transaction():  # a savepoint inside the page's transaction
                self._copy(table, rows, payload)
        except psycopg.errors.UniqueViolation:
            return None
        return rows.num_rows

    def ensure_schema(self) -> None:
        """Create the schema unless it is already this version's.

        Even the ``IF NOT EXISTS`` forms lock what they name (``COMMENT ON`` takes SHARE UPDATE
        EXCLUSIVE), so running them while another city's load holds its tables deadlocks. The
        schema's comment carries a fingerprint of what the DDL is made from; when it matches nothing is locked.
        """
        fingerprint = f"jinbao schema {schema_fingerprint('postgresql')}"
        if self._schema_comment() == fingerprint:
            return
        with self.con.transaction():
            # one schema creation at a time when several cities start loading together
            self.con.execute("SELECT pg_advisory_xact_lock(hashtext('jinbao.ensure_schema'))")
            if self._schema_comment() == fingerprint:  # made while this one waited
                return
            for statement in ddl_statements("postgresql"):
                self.con.execute(statement)
            self.con.execute(f"COMMENT ON SCHEMA {SCHEMA} IS '{fingerprint}'")

    def _schema_comment(self) -> str | None:
        row = self.con.execute(
            "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", [SCHEMA]
        ).fetchone()
        return row[0] if row else None

    def lock_persons(self) -> None:
        """Person consolidation of concurrent city loads is serialized (held until the page commits)."""
        self.con.execute("SELECT pg_advisory_xact_lock(hashtext('jinbao.person'))")

    def try_lock(self, name: str) -> bool:
        """A session advisory lock: one cutover step per city at a time, whichever machine runs it."""
        return bool(
            self.con.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [f"jinbao.{name}"]).fetchone()[0]
        )

    def unlock(self, name: str) -> None:
        self.con.execute("SELECT pg_advisory_unlock(hashtext(%s))", [f"jinbao.{name}"])

    def close(self) -> None:
        self.con.close()
