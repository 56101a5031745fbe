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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from loaders.exceptions import LoadError
from loaders.partitions import partition_rules, routing_select
from loaders.schema import (
    ENTITY_TABLES,
    PARTITIONED,
    PLACEMENT_COLUMNS,
    SCHEMA,
    load_batch,
    metadata,
    source_table,
)
from loaders.schema import quarantine as quarantine_table


@dataclass(frozen=True)
class ApplyResult:
    inserted: int
    updated: int
    unchanged: int
    rejected: pa.Table  # rows refused by the key check, with a 'reason' column


@dataclass(frozen=True)
class PreparedPage:
    """What a first load's direct insert of a page needs that the database does not: computed ahead."""

    source: pa.Table  # the rows it was prepared from (apply() uses it only for these)
    rows: pa.Table  # the first row of each key
    rejected: pa.Table
    placed: pa.Table  # rows with their placement columns, in the table's column order
    payload: Any  # the engine's encoding of ``placed`` (CSV for PostgreSQL's COPY), or None


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_RUN_QUARANTINE = "run_quarantine"
DUPLICATE_IN_BATCH = "same key twice in one batch"


def _flat(a):
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _unique_strings(chunks: list[pa.Array]) -> pa.Array:
    return pc.unique(pa.chunked_array(chunks, pa.string())) if chunks else pa.array([], pa.string())


def _concat(tables: list[pa.Table], columns: list[str]) -> pa.Table:
    """The tables one after another; an empty table of string ``columns`` when there are none."""
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in columns})
    return pa.concat_tables(
        [t.select(columns).cast(pa.schema([(c, pa.string()) for c in columns])) for t in tables]
    )


def first_of_each_key(rows: pa.Table, key: list[str]) -> tuple[pa.Table, pa.Table]:
    """(the first row of each key, in order; every later row with a key already seen, with a ``reason``)."""
    n = rows.num_rows
    positions = pa.array(np.arange(n, dtype=np.int64))
    empty = rows.schema.append(pa.field("reason", pa.string())).empty_table()
    if n == 0 or not key:
        return rows, empty
    firsts = (
        rows.select(key)
        .append_column("_pos", positions)
        .group_by(key, use_threads=False)
        .aggregate([("_pos", "min")])
        .column("_pos_min")
    )
    if len(firsts) == n:
        return rows, empty
    keep = pc.is_in(positions, value_set=firsts)
    later = rows.filter(pc.invert(keep))
    reason = pa.repeat(pa.scalar(DUPLICATE_IN_BATCH), later.num_rows)
    return rows.filter(keep), later.append_column("reason", reason)


def _canonical(column: sa.Column) -> str:
    """SQL giving a column's value as text, the same text in DuckDB and PostgreSQL (NULL stays NULL)."""
    name = ident(column.name)
    if isinstance(column.type, sa.Date):  # days since 1970: no DateStyle or format function differs
        return f"CAST({name} - DATE '1970-01-01' AS VARCHAR)"
    return f"CAST({name} AS VARCHAR)"  # text, integers, and NUMERIC(18,2) (always two decimals on both)


def digest_sql(table: str) -> tuple[str, str]:
    """(key, digest) SQL expressions over a row of ``province.<table>`` or of its unified Arrow rows.

    The key is the row's business key (city and placement columns left out), parts joined by '|';
    the digest an md5 of every column the source determines, each marked present or NULL, so the same
    row gives the same pair on both engines and on the source side (computed in DuckDB).
    """
    t = ENTITY_TABLES[table]
    key = [
        c
        for c in t.primary_key.columns
        if not c.info.get("derived") and c.name not in PLACEMENT_COLUMNS and c.name != "source_city"
    ]
    content = [c for c in t.columns if not c.info.get("derived")]
    key_sql = (
        "concat_ws('|', " + ", ".join(_canonical(c) for c in key) + ")"
        if len(key) > 1
        else _canonical(key[0])
    )
    parts = ", ".join(f"coalesce('=' || {_canonical(c)}, '~')" for c in content)
    return key_sql, f"md5(concat_ws(chr(31), {parts}))"


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

    def execute_by_key(self, sql: str, params: list | tuple = ()) -> Any:
        """Run ``sql``, which joins a page to a large table on its key, as one index lookup per page row."""
        return self.execute(sql, params)

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

    # -- placement: scope and business partition ---------------------------------------------
    #: P for production loads, T for cutover rehearsals into the test partition
    scope = "P"

    def _test(self) -> str:
        return partition_rules().test_partition

    def _placement_sql(self, entity: str, city_expr: str) -> dict[str, str]:
        """SQL for the derived columns of a staged row ``s`` of ``entity``."""
        table = ENTITY_TABLES[entity]
        out = {}
        if "scope" in table.c:
            out["scope"] = f"'{self.scope}'"
        if "partition_code" in table.c:
            rules = partition_rules()
            if self.scope == "T":
                out["partition_code"] = f"'{self._test()}'"
            else:
                cases = " ".join(f"WHEN '{c}' THEN '{rules.provisional(c)}'" for c in self._cities())
                provisional = (
                    f"CASE {city_expr} {cases} ELSE '{rules.default}' END" if cases else f"'{rules.default}'"
                )
                out["partition_code"] = f"COALESCE(pp._partition, {provisional})"
        return out

    def _placement_join(self, source: str) -> str:
        """Join giving each staged row ``s`` its person's current production partition (``pp._partition``).

        A join, not a correlated subquery: one pass over the page's ID numbers, not one lookup per row.
        """
        return (
            f"LEFT JOIN (SELECT id_number AS _pid, max(partition_code) AS _partition FROM {SCHEMA}.person "
            f"WHERE partition_code <> '{self._test()}' AND id_number IN (SELECT id_number FROM {source}) "
            "GROUP BY id_number) pp ON pp._pid = s.id_number"
        )

    def _cities(self) -> list[str]:
        rules = partition_rules()
        return sorted({c for r in rules.rules for c in r.source_city})

    def _scope_filter(self, entity: str, alias: str = "") -> str:
        """SQL condition selecting this target's scope in ``entity``."""
        a = f"{alias}." if alias else ""
        table = metadata.tables[f"{SCHEMA}.{entity}"]
        if "scope" in table.c:
            return f"{a}scope = '{self.scope}'"
        if "partition_code" in table.c:
            op = "=" if self.scope == "T" else "<>"
            return f"{a}partition_code {op} '{self._test()}'"
        return "TRUE"

    # -- entity rows ------------------------------------------------------------------------
    def prepare(self, entity: str, rows: pa.Table) -> PreparedPage | None:
        """Do ahead, in another thread, what :meth:`apply` will need for a first load's direct insert.

        Reads nothing from the database: None when the entity is not being first-loaded or its
        persons' partitions have not been read yet (the first page reads them).
        """
        if (
            entity not in PARTITIONED
            or entity == "person"
            or not self.__dict__.get("_initial", {}).get(entity)
        ):
            return None
        table = ENTITY_TABLES[entity]
        derived = self._placement_sql(entity, "s.source_city")
        partitions = None
        if "partition_code" in derived and self.scope != "T":
            cities = tuple(sorted(pc.unique(rows.column("source_city")).to_pylist()))
            # taken once: the loading thread may forget the cache meanwhile, and this thread never reads
            partitions = self.__dict__.get("_partition_index", {}).get(cities)
            if partitions is None:
                return None
        business = [c.name for c in table.primary_key.columns if c.name not in PLACEMENT_COLUMNS]
        given = [c.name for c in table.columns if c.name not in derived]
        kept, rejected = first_of_each_key(rows.select(given), [k for k in business if k not in derived])
        placed = self._placed(entity, kept, partitions)
        return PreparedPage(rows, kept, rejected, placed, self.encode(placed))

    def encode(self, rows: pa.Table) -> Any:
        """The engine's encoding of rows for :meth:`insert_new` (none by default)."""
        return None

    def apply(self, entity: str, rows: pa.Table, prepared: PreparedPage | None = None) -> ApplyResult:
        """Upsert ``rows`` into ``province.<entity>`` in this target's scope; call inside a transaction.

        Rows are matched on their business key (the primary key without the columns
        that only place a row); a row whose partition or period changed is moved, not
        duplicated. Two rows with the same key in one batch are refused and returned
        in ``rejected`` for quarantine. While the city had nothing of ``entity`` when
        this run began, rows are placed in Arrow and written straight into the table
        (:meth:`insert_new`): no staging table, no row comparison; ``prepared`` (from
        :meth:`prepare`, for these very rows) has that work done already.
        """
        table = ENTITY_TABLES[entity]
        pk = [c.name for c in table.primary_key.columns]
        cols = [c.name for c in table.columns]
        business = [k for k in pk if k not in PLACEMENT_COLUMNS]
        placement = [k for k in pk if k in PLACEMENT_COLUMNS]
        name = f"{SCHEMA}.{entity}"
        derived = self._placement_sql(entity, "s.source_city")
        given = [c for c in cols if c not in derived]
        on_pk = " AND ".join(f"t.{ident(k)} = s.{ident(k)}" for k in pk)
        same_business = " AND ".join(
            [f"t.{ident(k)} = s.{ident(k)}" for k in business] + [self._scope_filter(entity, "t")]
        )
        pk_list = ", ".join(ident(k) for k in pk)
        col_list = ", ".join(ident(c) for c in cols)
        initial = getattr(self, "_initial", {}).get(entity)
        if not (initial and prepared is not None and prepared.source is rows):
            prepared = None
        if prepared is not None:
            rows, rejected = prepared.rows, prepared.rejected
        else:
            # within one batch every row has the same scope: duplicates are judged on the given key columns
            rows, rejected = first_of_each_key(rows.select(given), [k for k in business if k not in derived])
        if rows.num_rows == 0:
            return ApplyResult(inserted=0, updated=0, unchanged=0, rejected=rejected)
        already = 0  # rows the direct insert wrote before it met a key the table already held
        try:
            if initial:
                placed = prepared.placed if prepared is not None else self._placed(entity, rows)
                self._note_touched(entity, placed)
                self._note_placed(entity, placed)
                already = (
                    self.insert_new(name, placed, prepared.payload if prepared is not None else None) or 0
                )
                if already == placed.num_rows:
                    return ApplyResult(inserted=already, updated=0, unchanged=0, rejected=rejected)
                self._initial[entity] = False  # a key came twice across pages: compare rows from here on
            # Placed in Arrow from the persons' partitions read once per run (as a first load places
            # its rows): no staging round to derive them in SQL.
            placed = self._placed(entity, rows)
            self.stage("staged", placed, like=name)
            same = " AND ".join(f"t.{ident(c)} IS NOT DISTINCT FROM s.{ident(c)}" for c in cols)
            # One pass over the target's index compares every staged row; the upsert then touches only
            # the rows that are new or differ (an incremental run re-reads its look-back window, most of
            # it unchanged: probing all of it twice was a third of its time).
            self.execute("DROP TABLE IF EXISTS compared")
            self.execute_by_key(
                f"CREATE TEMP TABLE compared AS SELECT s.*, t.{ident(pk[0])} IS NULL AS _new, "
                f"(t.{ident(pk[0])} IS NOT NULL AND NOT ({same})) AS _differs "
                f"FROM staged s LEFT JOIN {name} t ON {on_pk}"
            )
            counts = self.fetchall(
                "SELECT count(*) FILTER (WHERE _new), count(*) FILTER (WHERE _differs), "
                "count(*) FILTER (WHERE NOT _new AND NOT _differs) FROM compared"
            )[0]
            if self._tracking() and (counts[0] or counts[1]):
                # what routing has to look at again: the rows this page writes (an unchanged row was
                # routed by the run that wrote it)
                noted = [
                    c for c in ("id_number", "partition_code", "source_city", "employer_no") if c in cols
                ]
                written = self.fetch_arrow(f"SELECT {', '.join(noted)} FROM compared WHERE _new OR _differs")
                self._note_touched(entity, written)
                self._note_placed(entity, written)
            moved = 0
            if placement and counts[0]:
                # Only a row not found at its own placement can have an older copy placed elsewhere.
                # Looking for one probes every partition's index, so the rows found in place (all of
                # them when a run only updates) are not looked for.
                self.analyze("compared")  # the search joins it: planned blind it would scan the partitions
                differs = " OR ".join(f"t.{ident(k)} IS DISTINCT FROM s.{ident(k)}" for k in placement)
                moved = self._rowcount(
                    f"DELETE FROM {name} t WHERE EXISTS (SELECT 1 FROM compared s "
                    f"WHERE s._new AND {same_business} AND ({differs}))"
                )
            if counts[0] or counts[1]:
                non_pk = [c for c in cols if c not in pk]
                update = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in non_pk)
                # Only rows that differ are written: an unchanged row is not touched at all (and a row
                # that changed since the comparison is still compared by the upsert itself).
                changed = " OR ".join(
                    f"{name}.{ident(c)} IS DISTINCT FROM excluded.{ident(c)}" for c in non_pk
                )
                self.execute(
                    f"INSERT INTO {name} ({col_list}) SELECT {col_list} FROM compared WHERE _new OR _differs "
                    f"ON CONFLICT ({pk_list}) DO UPDATE SET {update} WHERE {changed}"
                )
        except LoadError:
            raise
        except Exception as exc:
            raise LoadError(f"applying {rows.num_rows} {entity} rows to {self.url} failed: {exc}") from exc
        # rows the direct insert wrote compare as unchanged in the merge: they are this page's inserts
        return ApplyResult(
            inserted=counts[0] - moved + already,
            updated=counts[1] + moved,
            unchanged=counts[2] - already,
            rejected=rejected,
        )

    def insert_new(self, table: str, rows: pa.Table, payload: Any = None) -> int | None:
        """Write ``rows`` (every column of ``table``, in order) into ``table``, none of whose keys it should hold.

        Returns how many rows were written: all of them, or, when a key is already there,
        the engine's partial count (rows it kept) or None (it wrote nothing).
        """
        raise NotImplementedError

    def _placed(self, entity: str, rows: pa.Table, partitions=None) -> pa.Table:
        """``rows`` with the derived placement columns, computed in Arrow as :meth:`_placement_sql` does in SQL.

        ``partitions``: an entry of the persons' partitions already read (else it is read when needed).
        """
        table = ENTITY_TABLES[entity]
        n = rows.num_rows
        out = {}
        for column in table.columns:
            if column.name == "scope":
                out["scope"] = pa.repeat(pa.scalar(self.scope), n)
            elif column.name == "partition_code" and column.info.get("derived"):
                out["partition_code"] = self._partitions_of(rows, partitions)
            else:
                out[column.name] = rows.column(column.name)
        return pa.table(out)

    def _partitions_of(self, rows: pa.Table, partitions=None) -> pa.Array:
        """Each row's person's production partition, else the provisional partition of its city."""
        rules = partition_rules()
        n = rows.num_rows
        if self.scope == "T":
            return pa.repeat(pa.scalar(self._test()), n)
        cities = rows.column("source_city")
        known = pc.unique(cities)
        provisional = pc.take(
            pa.array([rules.provisional(c) for c in known.to_pylist()], pa.string()),
            pc.index_in(cities, value_set=known),
        )
        index, lookup = partitions or self._person_partitions(known.to_pylist())
        if index.num_rows == 0 or "id_number" not in rows.column_names:
            return _flat(provisional)
        found = pc.take(index.column("partition_code"), lookup.positions(rows.column("id_number")))
        return _flat(pc.coalesce(found, provisional))

    def _person_partitions(self, cities: list[str]):
        """(production partition of the persons of ``cities``, its lookup by ID number), read once per run.

        Forgotten whenever this target writes persons or moves them (:meth:`_forget_partitions`). A person
        another city's load moves meanwhile is put right by this run's routing sweep, which moves the rows
        this run placed in a partition their person has left.
        """
        from transforms.lookup import KeyLookup

        cache = self.__dict__.setdefault("_partition_index", {})
        key = tuple(sorted(cities))
        if key not in cache:
            marks = ", ".join(self.marker for _ in key)
            # A person missing here gets the provisional partition: when the cities share one, the persons
            # already in it need not be read (most of a city's persons: at 200,000 persons 0.45 s became 0.1 s).
            provisional = {partition_rules().provisional(c) for c in key}
            skip = f" AND partition_code <> '{provisional.pop()}'" if len(provisional) == 1 else ""
            table = self.fetch_arrow(
                f"SELECT id_number, max(partition_code) AS partition_code FROM {SCHEMA}.person "
                f"WHERE partition_code <> '{self._test()}'{skip} AND id_number IN (SELECT id_number "
                f"FROM {SCHEMA}.person_xref WHERE scope = 'P' AND source_city IN ({marks})) GROUP BY id_number",
                list(key),
            )
            cache[key] = (table, KeyLookup(table.column("id_number")))
        return cache[key]

    def begin_entity(self, entity: str, city: str) -> None:
        """Note whether the city has rows of ``entity`` yet: a first load can skip row comparison."""
        self._page_city_entity = (city, entity)
        self.__dict__.pop("_analyzed_first_page", None)
        table = source_table(entity)
        if "_initial" not in self.__dict__:
            self._initial: dict[str, bool] = {}  # entities the city had no rows in when this run began
        n = self.fetchall(
            f"SELECT count(*) FROM (SELECT 1 FROM {SCHEMA}.{table} WHERE source_city = {self.marker} "
            f"AND {self._scope_filter(table)} LIMIT 1) x",
            [city],
        )[0][0]
        self._initial[table] = int(n) == 0
        if "_had_quarantine" not in self.__dict__:
            self._had_quarantine: dict[str, bool] = {}
        self._had_quarantine[entity] = bool(
            self.fetchall(
                f"SELECT count(*) FROM (SELECT 1 FROM {SCHEMA}.quarantine WHERE source_city = {self.marker} "
                f"AND entity = {self.marker} AND scope = '{self.scope}' LIMIT 1) x",
                [city, entity],
            )[0][0]
        )

    def _rowcount(self, sql: str) -> int:
        raise NotImplementedError

    def analyze(self, table: str) -> None:
        """Give the planner statistics for a temp table (PostgreSQL plans blind without them)."""

    def refresh_statistics(self, entity: str, written: int) -> None:
        """Bring the planner's statistics up to date for the tables a load of ``entity`` wrote ``written`` rows of.

        A bulk load outruns autovacuum (or runs where it is off): without fresh statistics the
        routing and consolidation queries that follow plan for tables of one row and take seconds.
        Contributions and accounts are left to autovacuum: nothing after their load reads them selectively.
        DuckDB keeps its statistics as it writes, so this is PostgreSQL's concern.
        """

    def _analyze_first_page(self, table: str) -> None:
        """On a first load, give the planner the xref table's size once its first page is in.

        Consolidation joins the xref table; planned on the statistics of an empty table it runs as
        nested loops (a second for 2,000 employers, where 6 ms will do).
        """
        done = self.__dict__.setdefault("_analyzed_first_page", set())
        if getattr(self, "_initial", {}).get(table) and table not in done:
            done.add(table)
            self.analyze(f"{SCHEMA}.{table}")

    def apply_persons(self, rows: pa.Table) -> ApplyResult:
        """Record each source person in ``person_xref`` and re-derive the consolidated ``person`` rows they touch.

        The consolidated row takes the attributes of the first source record in
        (source_city, source_person_no) order, so the outcome is the same whatever
        order cities are loaded in. An ID number corrected at source moves the record.
        """
        self._forget_partitions()
        self.lock_persons()
        self.stage("staged_person_ids", rows.select(["id_number", "source_city", "source_person_no"]))
        self.execute("DROP TABLE IF EXISTS affected_ids")
        self.execute(
            "CREATE TEMP TABLE affected_ids AS SELECT id_number FROM staged_person_ids UNION "
            f"SELECT x.id_number FROM {SCHEMA}.person_xref x JOIN staged_person_ids k "
            f"ON x.source_city = k.source_city AND x.source_person_no = k.source_person_no AND x.scope = '{self.scope}'"
        )
        self.analyze("affected_ids")
        result = self.apply("person_xref", rows)
        self._analyze_first_page("person_xref")
        self.consolidate_persons()
        return result

    def try_lock(self, name: str) -> bool:
        """Take a named lock for this connection's lifetime; False if another session holds it.

        A DuckDB file has one writing process, so there it always succeeds.
        """
        return True

    def unlock(self, name: str) -> None:
        """Release a lock taken with :meth:`try_lock`."""

    def lock_persons(self) -> None:
        """Serialize person consolidation between concurrent loads (a no-op where there is one writer)."""

    def consolidate_persons(self) -> None:
        """Re-derive ``person`` (this scope) for the ID numbers in temp table ``affected_ids``."""
        self._forget_partitions()
        person_cols = [c.name for c in ENTITY_TABLES["person"].columns if c.name != "partition_code"]
        plist = ", ".join(ident(c) for c in person_cols)
        cols = ["partition_code", *person_cols]
        col_list = ", ".join(ident(c) for c in cols)
        part = self._placement_sql("person", "s.source_city")["partition_code"]
        update = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in person_cols if c != "id_number")
        changed = " OR ".join(
            f"{SCHEMA}.person.{ident(c)} IS DISTINCT FROM excluded.{ident(c)}"
            for c in person_cols
            if c != "id_number"
        )
        self.execute("DROP TABLE IF EXISTS derived_person")
        join = self._placement_join("affected_ids") if self.scope != "T" else ""
        self.execute(
            f"CREATE TEMP TABLE derived_person AS SELECT {part} AS partition_code, {plist} FROM ("
            f" SELECT x.*, row_number() OVER (PARTITION BY x.id_number ORDER BY x.source_city, x.source_person_no) AS rn"
            f" FROM {SCHEMA}.person_xref x WHERE x.scope = '{self.scope}'"
            f" AND x.id_number IN (SELECT id_number FROM affected_ids)) s {join} WHERE rn = 1"
        )
        self.analyze("derived_person")
        self.execute(
            f"DELETE FROM {SCHEMA}.person WHERE id_number IN (SELECT id_number FROM affected_ids) "
            f"AND {self._scope_filter('person')} AND NOT EXISTS (SELECT 1 FROM derived_person d "
            f"WHERE d.id_number = {SCHEMA}.person.id_number AND d.partition_code = {SCHEMA}.person.partition_code)"
        )
        self.execute(
            f"INSERT INTO {SCHEMA}.person ({col_list}) SELECT {col_list} FROM derived_person "
            f"ON CONFLICT (partition_code, id_number) DO UPDATE SET {update} WHERE {changed}"
        )

    def apply_employers(self, rows: pa.Table) -> ApplyResult:
        """Record each source employer in ``employer_xref`` and re-derive the consolidated ``employer`` rows.

        Records with the same employer id (the organization code, which a USCC embeds) are one employer;
        see :meth:`consolidate_employers` for which record's attributes it takes.
        """
        self.lock_persons()  # the one consolidation lock: persons and employers of concurrent loads
        self.stage("staged_employer_keys", rows.select(["employer_id", "source_city", "employer_no"]))
        self.execute("DROP TABLE IF EXISTS affected_employers")
        self.execute(
            "CREATE TEMP TABLE affected_employers AS SELECT employer_id FROM staged_employer_keys UNION "
            f"SELECT x.employer_id FROM {SCHEMA}.employer_xref x JOIN staged_employer_keys k "
            f"ON x.source_city = k.source_city AND x.employer_no = k.employer_no AND x.scope = '{self.scope}'"
        )
        self.analyze("affected_employers")
        result = self.apply("employer_xref", rows)
        self._analyze_first_page("employer_xref")
        self.consolidate_employers()
        return result

    def consolidate_employers(self) -> None:
        """Re-derive ``employer`` (this scope) for the employer ids in temp table ``affected_employers``.

        Name, type and division come from the first source record in (source_city, employer_no) order;
        the USCC is the first one any source record holds; the organization code is the id itself (NULL
        for an employer known by neither code). The same records give the same row in any load order.
        """
        cols = [c.name for c in ENTITY_TABLES["employer"].columns]
        col_list = ", ".join(ident(c) for c in cols)
        keyed = ("scope", "employer_id")
        update = ", ".join(f"{ident(c)} = excluded.{ident(c)}" for c in cols if c not in keyed)
        changed = " OR ".join(
            f"{SCHEMA}.employer.{ident(c)} IS DISTINCT FROM excluded.{ident(c)}"
            for c in cols
            if c not in keyed
        )
        mine = f"scope = '{self.scope}' AND employer_id IN (SELECT employer_id FROM affected_employers)"
        order = "row_number() OVER (PARTITION BY employer_id ORDER BY source_city, employer_no) AS rn"
        self.execute("DROP TABLE IF EXISTS derived_employer")
        self.execute(
            f"CREATE TEMP TABLE derived_employer AS SELECT f.scope, f.employer_id, "
            "CASE WHEN f.employer_id LIKE '%:%' THEN NULL ELSE f.employer_id END AS org_code, u.uscc, f.name, "
            "f.employer_type, f.division_code, f.source_city, f.employer_no "
            f"FROM (SELECT *, {order} FROM {SCHEMA}.employer_xref WHERE {mine}) f "
            f"LEFT JOIN (SELECT employer_id, uscc, {order} FROM {SCHEMA}.employer_xref "
            f"WHERE {mine} AND uscc IS NOT NULL) u ON u.employer_id = f.employer_id AND u.rn = 1 WHERE f.rn = 1"
        )
        self.analyze("derived_employer")
        # NOT EXISTS (an anti-join), not NOT IN: PostgreSQL runs a NOT IN over a table it cannot hash
        # once per row (10,000 employers took 25 s)
        self.execute(
            f"DELETE FROM {SCHEMA}.employer WHERE {mine} AND NOT EXISTS "
            f"(SELECT 1 FROM derived_employer d WHERE d.employer_id = {SCHEMA}.employer.employer_id)"
        )
        self.execute(
            f"INSERT INTO {SCHEMA}.employer ({col_list}) SELECT {col_list} FROM derived_employer "
            f"ON CONFLICT (scope, employer_id) DO UPDATE SET {update} WHERE {changed}"
        )

    # Entities whose rows decide a person's partition (config/partitions.yml); contributions and
    # accounts only follow it.
    _ROUTING_ENTITIES = ("person", "person_xref", "enrolment", "employer_xref")

    def _tracking(self) -> bool:
        return self.__dict__.get("_touched") is not None

    def _note_touched(self, entity: str, rows: pa.Table) -> None:
        """Remember whom this run wrote routing rows for: an incremental run routes only them (see :meth:`route_partitions`)."""
        touched = self.__dict__.get("_touched")
        if (
            touched is None or entity not in self._ROUTING_ENTITIES
        ):  # untracked: a full load routes the whole city
            return
        if "id_number" in rows.column_names:
            touched["ids"].append(pc.unique(_flat(rows.column("id_number"))))
        if entity == "employer_xref":
            touched["employers"].append(rows.select(["source_city", "employer_no"]))

    def _note_placed(self, entity: str, placed: pa.Table) -> None:
        """Remember the partition each person's rows were placed in by this run (incremental runs only)."""
        touched = self.__dict__.get("_touched")
        if touched is None or entity not in PARTITIONED or entity == "person":
            return
        pairs = placed.select(["id_number", "partition_code"])
        touched["placed"].append(pairs.group_by(["id_number", "partition_code"]).aggregate([]))

    def _forget_partitions(self) -> None:
        """Persons were written or moved: the next placement reads their partitions afresh."""
        self.__dict__.pop("_partition_index", None)

    def begin_run(self, track_touched: bool = False) -> None:
        """Start a run: forget what an earlier one wrote; ``track_touched`` to route only whom this run writes."""
        self._forget_partitions()
        self.__dict__.pop("_touched", None)
        if track_touched:
            self._touched = {"ids": [], "employers": [], "placed": []}

    def route_partitions(self, city: str, only_touched: bool = False) -> int:
        """Move the city's production persons (and their rows) to the partition the rules give them.

        ``only_touched`` (incremental runs): only the persons this run wrote person or enrolment rows
        for, and those enrolled at an employer it wrote, can have changed partition; the rest of the
        city was routed by the runs that wrote it. Rows follow their person: all rows of a person
        moved here, and the rows this run placed in a partition its person has left since (another
        city's load moved the person between this run's read of the partition and its commit).
        """
        self._forget_partitions()
        if self.scope == "T":
            return 0
        self.lock_persons()  # moves insert person rows: never beside another load's consolidation
        params = [city]
        persons = (
            f"SELECT id_number FROM {SCHEMA}.person_xref WHERE scope = 'P' AND source_city = {self.marker}"
        )
        touched = self.__dict__.get("_touched")
        incremental = only_touched and touched is not None  # (untracked: the whole city, as a full load)
        if incremental:
            employers = _concat(touched["employers"], ["source_city", "employer_no"])
            self.stage("touched_ids", pa.table({"id_number": _unique_strings(touched["ids"])}))
            self.execute("DROP TABLE IF EXISTS routed_ids")
            also = ""
            if employers.num_rows:  # (joining enrolment for no employer still reads all of it)
                self.stage("touched_employers", employers)
                also = (
                    f" UNION SELECT e.id_number FROM {SCHEMA}.enrolment e JOIN touched_employers t "
                    "ON e.source_city = t.source_city AND e.employer_no = t.employer_no "
                    f"WHERE e.partition_code <> '{self._test()}'"
                )
            self.execute(f"CREATE TEMP TABLE routed_ids AS SELECT id_number FROM touched_ids{also}")
            self.analyze("routed_ids")
            persons, params = "SELECT id_number FROM routed_ids", []
        routed = routing_select(partition_rules(), SCHEMA, persons)
        self.execute("DROP TABLE IF EXISTS partition_moves")
        self.execute(
            "CREATE TEMP TABLE partition_moves AS SELECT id_number, partition_code AS old_partition, new_partition "
            f"FROM ({routed}) r WHERE partition_code <> new_partition",
            params * routed.count(self.marker) if params else [],
        )
        n = int(self.fetchall("SELECT count(*) FROM partition_moves")[0][0])
        if n:
            self.execute(
                f"UPDATE {SCHEMA}.person SET partition_code = m.new_partition FROM partition_moves m "
                f"WHERE {SCHEMA}.person.id_number = m.id_number AND {SCHEMA}.person.partition_code = m.old_partition"
            )
        if incremental:
            placed = _concat(touched["placed"], ["id_number", "partition_code"])
            if not n and not placed.num_rows:
                return 0  # nobody moved, and this run placed no row that could have to follow someone
            self.execute("DROP TABLE IF EXISTS swept_ids")
            also = ""
            if placed.num_rows:
                self.stage("placed_persons", placed)
                also = (
                    f" UNION SELECT pl.id_number FROM placed_persons pl JOIN {SCHEMA}.person p "
                    f"ON p.id_number = pl.id_number WHERE p.partition_code <> '{self._test()}' "
                    "AND p.partition_code <> pl.partition_code"
                )
            self.execute(f"CREATE TEMP TABLE swept_ids AS SELECT id_number FROM partition_moves{also}")
            self.analyze("swept_ids")
            persons, params = "SELECT id_number FROM swept_ids", []
        # Every row follows its person. Each statement moves rows in place (UPDATE), so a row another
        # city's load commits meanwhile is never lost; one it placed before a move is put right by the
        # same sweep at the end of that city's load.
        for entity in PARTITIONED:
            if entity == "person":
                continue
            t = f"{SCHEMA}.{entity}"
            self.execute(
                f"UPDATE {t} SET partition_code = p.partition_code FROM {SCHEMA}.person p "
                f"WHERE {t}.id_number = p.id_number AND p.partition_code <> '{self._test()}' "
                f"AND {t}.partition_code <> '{self._test()}' AND {t}.partition_code <> p.partition_code "
                f"AND {t}.id_number IN ({persons})",
                params,
            )
        return n

    def remove_city(self, city: str) -> dict[str, int]:
        """Take one city's contribution out of this scope; shared persons are re-derived from the other cities.

        Call inside a transaction. Returns rows removed per table.
        """
        self._forget_partitions()
        self.lock_persons()
        self.execute("DROP TABLE IF EXISTS affected_ids")
        self.execute(
            f"CREATE TEMP TABLE affected_ids AS SELECT DISTINCT id_number FROM {SCHEMA}.person_xref "
            f"WHERE source_city = {self.marker} AND scope = '{self.scope}'",
            [city],
        )
        self.execute("DROP TABLE IF EXISTS affected_employers")
        self.execute(
            f"CREATE TEMP TABLE affected_employers AS SELECT DISTINCT employer_id FROM {SCHEMA}.employer_xref "
            f"WHERE source_city = {self.marker} AND scope = '{self.scope}'",
            [city],
        )
        removed = {}
        for entity in ("contribution", "account", "enrolment", "employer_xref", "person_xref", "quarantine"):
            where = f"source_city = {self.marker} AND {self._scope_filter(entity)}"
            removed[entity] = int(
                self.fetchall(f"SELECT count(*) FROM {SCHEMA}.{entity} WHERE {where}", [city])[0][0]
            )
            self.execute(f"DELETE FROM {SCHEMA}.{entity} WHERE {where}", [city])
        for consolidated, rederive in (
            ("person", self.consolidate_persons),
            ("employer", self.consolidate_employers),
        ):
            count = f"SELECT count(*) FROM {SCHEMA}.{consolidated} WHERE {self._scope_filter(consolidated)}"
            before = int(self.fetchall(count)[0][0])
            rederive()
            removed[consolidated] = before - int(self.fetchall(count)[0][0])
        if self.scope == "P":
            for other in self.cities_loaded():
                self.route_partitions(other)
        return removed

    def cities_loaded(self) -> list[str]:
        return [
            r[0]
            for r in self.fetchall(
                f"SELECT DISTINCT source_city FROM {SCHEMA}.person_xref WHERE scope = '{self.scope}' ORDER BY 1"
            )
        ]

    def xref_count(self, city: str, entity: str = "person") -> int:
        """Source records of a consolidated entity the city holds in this scope."""
        return int(
            self.fetchall(
                self._p(
                    f"SELECT count(*) FROM {SCHEMA}.{source_table(entity)} WHERE source_city = ? AND scope = ?"
                ),
                [city, self.scope],
            )[0][0]
        )

    def quarantine(self, rows: pa.Table, batch_id: str, page_keys: pa.Array | None = None) -> None:
        """Record quarantine rows; a row already recorded keeps its first batch id.

        With ``page_keys`` (every source key the page read), earlier quarantine rows of those
        keys that this page no longer produces are removed: a row fixed at source, or held
        back now for another reason, does not stay listed under the old one.
        """
        city, entity = getattr(self, "_page_city_entity", (None, None))
        had = getattr(self, "_had_quarantine", {}).get(entity, True)
        if rows.num_rows == 0 and not had:
            return  # nothing to record, and no earlier quarantine row of this city and entity to settle
        if not had:
            # None of this city's and entity's rows were quarantined before this run: nothing to settle
            # or keep, so the page's rows go straight in (a key this run already recorded falls back
            # to the merge below). At 5M rows this saved 256 staging rounds.
            n = rows.num_rows
            extra = {
                "scope": pa.repeat(pa.scalar(self.scope), n),
                "first_batch_id": pa.repeat(pa.scalar(batch_id), n),
            }
            full = pa.table(
                {
                    c.name: extra[c.name] if c.name in extra else rows.column(c.name)
                    for c in quarantine_table.columns
                }
            )
            if self.insert_new(f"{SCHEMA}.quarantine", full) is not None:
                return
        self.stage("staged_q", rows)
        if page_keys is not None and len(page_keys) and had:
            self.stage("staged_page_keys", pa.table({"source_key": page_keys}))
            self.execute(
                self._p(
                    f"DELETE FROM {SCHEMA}.quarantine q USING staged_page_keys k WHERE q.source_key = k.source_key "
                    "AND q.scope = ? AND q.source_city = ? AND q.entity = ? AND NOT EXISTS "
                    "(SELECT 1 FROM staged_q n WHERE n.source_key = q.source_key AND n.reason_code = q.reason_code)"
                ),
                [self.scope, city, entity],
            )
        if rows.num_rows == 0:
            return
        cols = ", ".join(rows.column_names)
        self.execute(
            self._p(
                f"INSERT INTO {SCHEMA}.quarantine (scope, {cols}, first_batch_id) "
                f"SELECT ?, {cols}, ? FROM staged_q ON CONFLICT DO NOTHING"
            ),
            [self.scope, batch_id],
        )
        if not had:
            return  # nothing can be stale (drop_stale_quarantine): the run's keys need not be kept
        self._ensure_run_quarantine()
        self.execute(
            f"INSERT INTO {_RUN_QUARANTINE} SELECT source_city, entity, source_key, reason_code FROM staged_q"
        )

    def _ensure_run_quarantine(self) -> None:
        self.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_RUN_QUARANTINE} "
            "(source_city VARCHAR, entity VARCHAR, source_key VARCHAR, reason_code VARCHAR)"
        )

    def drop_stale_quarantine(self, city: str, entity: str) -> int:
        """After a full extract: quarantine rows the source no longer produces are removed."""
        self._ensure_run_quarantine()
        if not getattr(self, "_had_quarantine", {}).get(entity, True):
            # nothing of the city's and entity's was quarantined before this run: nothing can be stale
            self.execute(
                self._p(f"DELETE FROM {_RUN_QUARANTINE} WHERE source_city = ? AND entity = ?"), [city, entity]
            )
            return 0
        params = [city, entity, self.scope, city, entity]
        self.analyze(_RUN_QUARANTINE)
        # an anti-join on the run's own keys (hash-joined), not a correlated NOT EXISTS per row
        seen = f"SELECT source_key, reason_code FROM {_RUN_QUARANTINE} WHERE source_city = ? AND entity = ?"
        stale = int(
            self.fetchall(
                self._p(
                    f"SELECT count(*) FROM {SCHEMA}.quarantine q LEFT JOIN ({seen}) r "
                    "ON r.source_key = q.source_key AND r.reason_code = q.reason_code "
                    "WHERE q.scope = ? AND q.source_city = ? AND q.entity = ? AND r.source_key IS NULL"
                ),
                params,
            )[0][0]
        )
        if stale:
            self.execute(
                self._p(
                    f"DELETE FROM {SCHEMA}.quarantine WHERE source_city = ? AND entity = ? AND scope = ? "
                    f"AND (source_key, reason_code) NOT IN ({seen})"
                ),
                [city, entity, self.scope, city, entity],
            )
        self.execute(
            self._p(f"DELETE FROM {_RUN_QUARANTINE} WHERE source_city = ? AND entity = ?"), [city, entity]
        )
        return stale

    # -- lookups, ledger, report queries ----------------------------------------------------
    def person_index(self, city: str) -> pa.Table:
        """Source person number → ID number for the city's loaded persons (this scope)."""
        return self.fetch_arrow(
            self._p(
                f"SELECT source_person_no, id_number FROM {SCHEMA}.person_xref WHERE source_city = ? AND scope = ?"
            ),
            [city, self.scope],
        )

    def entity_totals(self, entity: str, city: str, money: list[str]) -> tuple[int, Decimal]:
        expr = " + ".join(f"coalesce(sum({ident(m)}), 0)" for m in money) or "0"
        n, total = self.fetchall(
            self._p(
                f"SELECT count(*), CAST({expr} AS DECIMAL(38,2)) FROM {SCHEMA}.{entity} "
                f"WHERE source_city = ? AND {self._scope_filter(entity)}"
            ),
            [city],
        )[0]
        return int(n), Decimal(total)

    def consolidation_gaps(self, city: str, limit: int = 20) -> dict:
        """What is wrong with the consolidated records the city's rows lean on (production scope).

        ``persons_missing``: ID numbers of the city's source persons with no ``person`` row;
        ``persons_differing``: persons whose attributes are not those the consolidation rule takes (the
        first source record in (source_city, source_person_no) order, any city); ``orphans``: rows of the
        city's enrolments, contributions and accounts whose person is missing. Up to ``limit`` ID numbers each.
        """
        test = self._test()
        m = self.marker
        person_cols = [c.name for c in ENTITY_TABLES["person"].columns if c.name != "partition_code"]
        same = " AND ".join(f"p.{ident(c)} IS NOT DISTINCT FROM f.{ident(c)}" for c in person_cols)
        city_ids = f"SELECT id_number FROM {SCHEMA}.person_xref WHERE scope = 'P' AND source_city = {m}"
        found = f"SELECT 1 FROM {SCHEMA}.person p WHERE p.id_number = {{0}}.id_number AND p.partition_code <> '{test}'"
        queries = {
            "persons_missing": (
                f"SELECT DISTINCT x.id_number FROM {SCHEMA}.person_xref x WHERE x.scope = 'P' "
                f"AND x.source_city = {m} AND NOT EXISTS ({found.format('x')})"
            ),
            "persons_differing": (
                f"SELECT f.id_number FROM (SELECT x.*, row_number() OVER (PARTITION BY x.id_number "
                f"ORDER BY x.source_city, x.source_person_no) AS rn FROM {SCHEMA}.person_xref x "
                f"WHERE x.scope = 'P' AND x.id_number IN ({city_ids})) f JOIN {SCHEMA}.person p "
                f"ON p.id_number = f.id_number AND p.partition_code <> '{test}' WHERE f.rn = 1 AND NOT ({same})"
            ),
        }
        out: dict = {}
        for key, sql in queries.items():
            ids = [r[0] for r in self.fetchall(sql, [city])]
            out[key], out[f"{key}_ids"] = len(ids), sorted(ids)[:limit]
        out["orphans"] = {}
        for entity in ("enrolment", "contribution", "account"):
            out["orphans"][entity] = int(
                self.fetchall(
                    f"SELECT count(*) FROM {SCHEMA}.{entity} e WHERE e.source_city = {m} "
                    f"AND e.partition_code <> '{test}' AND NOT EXISTS ({found.format('e')})",
                    [city],
                )[0][0]
            )
        out["matches"] = (
            not out["persons_missing"] and not out["persons_differing"] and not any(out["orphans"].values())
        )
        return out

    def diff_rows(self, table: str, city: str, source: pa.Table, limit: int = 20) -> dict:
        """Compare the city's rows of ``table`` with (key ``k``, digest ``h``) pairs from the live source.

        The pairs are staged (COPY on PostgreSQL) and joined in the database: only the differences come
        back. Returns counts of rows ``missing`` (at the source, not here), ``extra`` (here, not at the
        source) and ``changed`` (same key, different content), with up to ``limit`` keys of each.
        """
        key, digest = digest_sql(table)
        where = f"source_city = {self.marker} AND {self._scope_filter(table)}"
        return self._diff(
            f"SELECT {key} AS k, {digest} AS h FROM {SCHEMA}.{table} WHERE {where}", [city], source, limit
        )

    def diff_quarantine(self, entity: str, city: str, source: pa.Table, limit: int = 20) -> dict:
        """The same comparison for the city's quarantined rows of ``entity``: key ``source_key|reason_code``."""
        here = (
            f"SELECT source_key || '|' || reason_code AS k, '' AS h FROM {SCHEMA}.quarantine "
            f"WHERE source_city = {self.marker} AND entity = {self.marker} AND scope = '{self.scope}'"
        )
        return self._diff(here, [city, entity], source, limit)

    def _diff(self, here: str, params: list, source: pa.Table, limit: int) -> dict:
        self.stage("verify_source", source.select(["k", "h"]))
        self.execute("DROP TABLE IF EXISTS verify_here")
        self.execute(f"CREATE TEMP TABLE verify_here AS {here}", params)
        self.execute("DROP TABLE IF EXISTS verify_diff")
        self.execute(
            "CREATE TEMP TABLE verify_diff AS SELECT coalesce(s.k, t.k) AS k, CASE WHEN t.k IS NULL THEN 'missing' "
            "WHEN s.k IS NULL THEN 'extra' ELSE 'changed' END AS kind "
            "FROM (SELECT DISTINCT k, h FROM verify_source) s FULL OUTER JOIN verify_here t ON s.k = t.k "
            "WHERE s.k IS NULL OR t.k IS NULL OR s.h <> t.h"
        )
        out: dict = {"province_rows": int(self.fetchall("SELECT count(*) FROM verify_here")[0][0])}
        for kind in ("missing", "extra", "changed"):
            out[kind] = int(self.fetchall(f"SELECT count(*) FROM verify_diff WHERE kind = '{kind}'")[0][0])
            out[f"{kind}_keys"] = [
                r[0]
                for r in self.fetchall(
                    f"SELECT k FROM verify_diff WHERE kind = '{kind}' ORDER BY k LIMIT {int(limit)}"
                )
            ]
        for t in ("verify_source", "verify_here", "verify_diff"):
            self.execute(f"DROP TABLE IF EXISTS {t}")
        return out

    def quarantine_count(self, entity: str, city: str) -> int:
        return int(
            self.fetchall(
                self._p(
                    f"SELECT count(*) FROM {SCHEMA}.quarantine WHERE source_city = ? AND entity = ? AND scope = ?"
                ),
                [city, entity, self.scope],
            )[0][0]
        )

    def quarantine_summary(self, city: str) -> list[tuple[str, str, int]]:
        return [
            (e, r, int(n))
            for e, r, n in self.fetchall(
                self._p(
                    f"SELECT entity, reason_code, count(*) FROM {SCHEMA}.quarantine WHERE source_city = ? AND scope = ? "
                    "GROUP BY entity, reason_code ORDER BY 1, 2"
                ),
                [city, self.scope],
            )
        ]

    def quarantine_samples(self, city: str, per_reason: int = 5) -> list[tuple]:
        return self.fetchall(
            self._p(
                "SELECT entity, reason_code, source_key, reason_detail, original_values FROM ("
                " SELECT q.*, row_number() OVER (PARTITION BY entity, reason_code ORDER BY source_key) AS rn"
                f" FROM {SCHEMA}.quarantine q WHERE source_city = ? AND scope = ?) x WHERE rn <= ? ORDER BY 1, 2, 3"
            ),
            [city, self.scope, per_reason],
        )

    def consolidation_counts(self) -> dict[str, int]:
        """How many of each finding the whole province holds (the lists are limited samples)."""
        return {
            name: int(self.fetchall(f"SELECT count(*) FROM ({sql.split(' ORDER BY ')[0]}) x")[0][0])
            for name, sql in self._finding_queries().items()
        }

    def consolidation_findings(self, limit: int = 20) -> dict[str, list[tuple]]:
        return {
            name: self.fetchall(f"{sql} LIMIT {int(limit)}") for name, sql in self._finding_queries().items()
        }

    def _finding_queries(self) -> dict[str, str]:
        """What consolidation leaves for a person to review (never merged automatically).

        - ``attribute_conflicts``: one ID number, source records that disagree on name, sex or birth date;
        - ``probable_duplicates``: same name, birth date and sex under different ID numbers;
        - ``double_payments``: the same person, insurance type and month paid in two or more cities;
        - ``employer_conflicts``: one employer id, source records that disagree on name, type or USCC
          (each city registers the employer's own local office, so divisions differing is not a conflict).
        """
        s = SCHEMA
        return {
            "attribute_conflicts": f"SELECT id_number, count(*), count(DISTINCT name), count(DISTINCT sex), count(DISTINCT birth_date) "
            f"FROM {s}.person_xref WHERE scope = '{self.scope}' GROUP BY id_number "
            "HAVING count(DISTINCT name) > 1 OR count(DISTINCT sex) > 1 "
            "OR count(DISTINCT birth_date) > 1 ORDER BY 1",
            "probable_duplicates": f"SELECT name, birth_date, sex, count(DISTINCT id_number) FROM {s}.person "
            f"WHERE {self._scope_filter('person')} "
            "GROUP BY name, birth_date, sex HAVING count(DISTINCT id_number) > 1 ORDER BY 1, 2",
            "double_payments": f"SELECT id_number, insurance_type, fee_period, count(DISTINCT source_city) FROM {s}.contribution "
            f"WHERE {self._scope_filter('contribution')} "
            "GROUP BY id_number, insurance_type, fee_period HAVING count(DISTINCT source_city) > 1 "
            "ORDER BY 1, 2, 3",
            "employer_conflicts": f"SELECT employer_id, count(*), count(DISTINCT name), count(DISTINCT employer_type), "
            f"count(DISTINCT uscc) FROM {s}.employer_xref WHERE scope = '{self.scope}' GROUP BY employer_id "
            "HAVING count(DISTINCT name) > 1 OR count(DISTINCT employer_type) > 1 OR count(DISTINCT uscc) > 1 "
            "ORDER BY 1",
        }

    def last_watermark(self, city: str, entity: str) -> str | None:
        rows = self.fetchall(
            self._p(
                f"SELECT watermark FROM {SCHEMA}.load_batch WHERE source_city = ? AND entity = ? AND scope = ? "
                "AND status = 'committed' AND watermark IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
            ),
            [city, entity, self.scope],
        )
        return rows[0][0] if rows else None

    def record_batch(self, row: dict) -> None:
        row = {**row, "scope": self.scope}
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
