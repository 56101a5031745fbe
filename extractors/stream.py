"""Stream one entity's legacy table as Arrow record batches, keyset-paged, resumable.

Each page is ``SELECT TOP n ... WHERE key > last ORDER BY key`` (on Sybase ASE,
which has no TOP before 15.0: ``SET ROWCOUNT n``): never OFFSET, so a page costs
the same at row 10 and row 10 million, memory is bounded by one page, and a
dropped connection resumes after the last key it delivered, with nothing
repeated and nothing lost. Values pass through the driver as Python objects and
are put into Arrow with the spec's exact types (Decimal stays decimal). Text that
FreeTDS would convert lossily (an ASE source declared cp936 holding GB18030: see
``extractors.charset``) is selected as ``CONVERT(VARBINARY(n), column)`` and decoded
here with the spec's actual charset.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from extractors.charset import (
    UNDECODABLE_COLUMN,
    decode_values,
    fetch_as_bytes,
    needs_repair,
    python_codec,
    repair_values,
)
from extractors.configuration import SourceEndpoint
from extractors.drivers import connect, is_retryable, odbc_connection_string, typed_placeholder
from extractors.exceptions import ExtractError, SourceUnavailable
from jinbao.spec import Charset, EntitySpec, SourceSpec

log = logging.getLogger("jinbao.extract")
_CHAR_TYPES = ("char", "nchar", "unichar")
# Text types held in the server's code page: fetched as bytes when FreeTDS's conversion would lose some.
_CODEPAGE_TYPES = ("char", "varchar", "nchar", "nvarchar", "text")
_MAX_VARBINARY = 16384  # ASE: the widest column on a 16K page


@dataclass(frozen=True)
class KeyRange:
    """Half-open slice of a single-column key: ``lower < key <= upper`` (None: unbounded)."""

    lower: Any = None
    upper: Any = None


@dataclass(frozen=True)
class Since:
    """Incremental filter: rows whose watermark column is at or after ``value``."""

    column: str
    value: Any


def _quote(ident: str) -> str:
    return ".".join(f"[{part}]" for part in ident.split("."))


def text_as_bytes(source: SourceSpec) -> bool:
    """Whether this source's code-page text is fetched as bytes and decoded by jinbao."""
    return fetch_as_bytes(source.dialect, source.charset.declared)


def _bytes_columns(entity: EntitySpec) -> set[str]:
    return {name for name, col in entity.all_columns.items() if col.base_type in _CODEPAGE_TYPES}


def _select_item(name: str, col, as_bytes: bool) -> str:
    """A select-list item: the column, or its bytes as the server holds them."""
    if not as_bytes or col.base_type not in _CODEPAGE_TYPES:
        return _quote(name)
    if col.length is None:  # TEXT or (MAX): ASE cannot convert it to VARBINARY
        raise ExtractError(
            f"{name} ({col.type}): text in this source must be read as bytes (its declared charset loses "
            "characters in FreeTDS), which needs a CHAR/VARCHAR column of known length"
        )
    width = col.length * (
        1 if col.base_type in ("char", "varchar") else 4
    )  # N-types: up to 4 bytes a character
    return f"CONVERT(VARBINARY({min(width, _MAX_VARBINARY)}), {_quote(name)}) AS {_quote(name)}"


def page_query(
    entity: EntitySpec,
    source: SourceSpec,
    page_rows: int,
    first_page: bool,
    *,
    upper_bound: bool = False,
    since: str | None = None,
) -> str:
    """The SQL for one keyset page; later pages compare the key tuple with parameters.

    Parameter order: key tuple terms (later pages), then the upper bound, then the watermark.
    """

    def mark(column: str) -> str:
        return typed_placeholder(source, _sql_type(entity.all_columns[column]))

    as_bytes = text_as_bytes(source)
    cols = ", ".join(_select_item(c, col, as_bytes) for c, col in entity.all_columns.items())
    order = ", ".join(_quote(k) for k in entity.key)
    top = "" if source.dialect == "sybase" or not page_rows else f"TOP {int(page_rows)} "
    sql = f"SELECT {top}{cols} FROM {_quote(entity.table)}"
    where = []
    if not first_page:
        # (k1 > ?) OR (k1 = ? AND k2 > ?) OR ...: portable to ASE, which has no row-value comparison.
        terms = []
        for i, k in enumerate(entity.key):
            eqs = [f"{_quote(p)} = {mark(p)}" for p in entity.key[:i]]
            terms.append("(" + " AND ".join([*eqs, f"{_quote(k)} > {mark(k)}"]) + ")")
        where.append("(" + " OR ".join(terms) + ")")
    if upper_bound:
        where.append(f"{_quote(entity.key[0])} <= {mark(entity.key[0])}")
    if since:
        where.append(f"{_quote(since)} >= {mark(since)}")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    if source.dialect == "sybase" and page_rows:
        sql = f"SET ROWCOUNT {int(page_rows)} {sql} SET ROWCOUNT 0"
    return sql


def _sql_type(col) -> str:
    """The column's type as a CAST target (for drivers that bind every parameter as text)."""
    base = col.base_type
    if col.is_text:
        wide = base.startswith(("n", "uni"))
        return f"{'N' if wide else ''}VARCHAR({col.length or 'MAX'})"
    return {
        "int": "INT",
        "bigint": "BIGINT",
        "smallint": "SMALLINT",
        "tinyint": "TINYINT",
        "datetime": "DATETIME",
        "float": "FLOAT",
        "money": "MONEY",
        "datetime2": "DATETIME2",
        "date": "DATE",
    }.get(base, col.type.upper())


def _page_params(key_values: Sequence[Any]) -> list[Any]:
    params: list[Any] = []
    for i in range(len(key_values)):
        params.extend(key_values[: i + 1])
    return params


def rows_to_batch(
    rows: list[tuple], entity: EntitySpec, charset: Charset | None = None, *, as_bytes: bool = False
) -> pa.RecordBatch:
    """Column-wise conversion with the spec's types; a value that does not fit raises, never rounds.

    When the city's text is stored in another charset than the server declares, text
    columns are repaired (``as_bytes``: code-page text arrived as bytes and is decoded with
    the actual charset); rows with undecodable bytes get ``__undecodable__`` (column=hex).
    """
    schema = entity.arrow_schema
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    if as_bytes and charset is None:
        raise ExtractError(f"{entity.table}: text fetched as bytes needs the source's charset")
    repair = not as_bytes and charset is not None and needs_repair(charset.declared, charset.actual)
    raw = _bytes_columns(entity) if as_bytes else set()
    undecodable: list[str | None] = [None] * len(rows)
    arrays = []
    for field, values, col in zip(schema, columns, entity.all_columns.values(), strict=True):
        bad = None
        if field.name in raw:
            values, bad = decode_values(list(values), charset.actual)
        elif repair and col.is_text:
            values, bad = repair_values(list(values), charset.declared, charset.actual)
        if bad is not None:
            for i, b in enumerate(bad):
                if b is not None:
                    note = f"{field.name}={b}"
                    undecodable[i] = note if undecodable[i] is None else f"{undecodable[i]}; {note}"
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ExtractError(
                f"{entity.table}.{field.name}: value does not fit {field.type}: {exc}"
            ) from exc
    if any(u is not None for u in undecodable):
        arrays.append(pa.array(undecodable, pa.string()))
        schema = schema.append(pa.field(UNDECODABLE_COLUMN, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class RateLimit:
    """At most ``rows_per_second`` rows since the first page; one budget shared by a city's workers."""

    def __init__(self, rows_per_second: int | None):
        self.rate = rows_per_second
        self.start = time.monotonic()
        self.rows = 0
        self._lock = threading.Lock()

    def take(self, rows: int) -> None:
        if not self.rate:
            return
        with self._lock:
            self.rows += rows
            ahead = self.rows / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


def extract_entity(
    source: SourceSpec,
    entity: EntitySpec,
    endpoint: SourceEndpoint,
    *,
    page_rows: int | None = None,
    key_range: KeyRange | None = None,
    since: Since | None = None,
    rate: RateLimit | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the table (or a key range of it) page by page as record batches with ``entity.arrow_schema``.

    A dropped connection or a deadlock is retried with exponential backoff
    (``source.retries``), resuming after the last key already yielded.
    """
    if source.driver == "arrow_odbc" and len(entity.key) == 1:
        yield from _extract_arrow(
            source, entity, endpoint, page_rows or source.batch_rows, key_range, since, rate
        )
        return
    page_rows = page_rows or source.batch_rows
    names = list(entity.all_columns)
    key_idx = [names.index(k) for k in entity.key]
    char_key = [entity.all_columns[k].base_type in _CHAR_TYPES for k in entity.key]
    as_bytes = text_as_bytes(source)
    byte_key = [as_bytes and k in _bytes_columns(entity) for k in entity.key]
    rate = rate or RateLimit(source.max_rows_per_second)
    last: list[Any] | None = None
    if key_range and key_range.lower is not None:
        if len(entity.key) != 1:
            raise ExtractError(f"{entity.table}: key ranges need a single-column key")
        last = [key_range.lower]
    upper = key_range.upper if key_range else None
    attempt = 0
    conn = None
    try:
        while True:
            try:
                if conn is None:
                    conn = connect(source, endpoint)
                    cur = conn.cursor()
                sql = page_query(
                    entity,
                    source,
                    page_rows,
                    first_page=last is None,
                    upper_bound=upper is not None,
                    since=since.column if since else None,
                )
                params = _page_params(last) if last is not None else []
                if upper is not None:
                    params.append(upper)
                if since is not None:
                    params.append(since.value)
                if params:
                    cur.execute(sql, tuple(params))
                else:
                    cur.execute(sql)
                rows = cur.fetchall()
            except Exception as exc:
                if isinstance(exc, ExtractError) and not isinstance(exc, SourceUnavailable):
                    raise
                attempt = _back_off(source, entity, exc, attempt)
                _close(conn)
                conn = None
                continue
            attempt = 0
            if rows:
                rate.take(len(rows))
                yield rows_to_batch([tuple(r) for r in rows], entity, source.charset, as_bytes=as_bytes)
            if len(rows) < page_rows:
                return
            tail = [
                _key_text(entity, rows[-1][i], source) if raw else rows[-1][i]
                for i, raw in zip(key_idx, byte_key, strict=True)
            ]
            # CHAR keys come back blank-padded; the server compares ignoring trailing blanks.
            last = [v.rstrip(" ") if is_char else v for v, is_char in zip(tail, char_key, strict=True)]
    finally:
        _close(conn)


def _key_text(entity: EntitySpec, raw: bytes, source: SourceSpec) -> str:
    """A key fetched as bytes, as text for the next page's parameters."""
    try:
        return bytes(raw).decode(python_codec(source.charset.actual))
    except UnicodeDecodeError:
        raise ExtractError(
            f"{entity.table}: key value 0x{bytes(raw).hex()} is not valid {source.charset.actual}; "
            "paging cannot continue past it"
        ) from None


def _as_text(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")[:23]  # DATETIME takes milliseconds
    return str(value)


def _extract_arrow(source, entity, endpoint, batch_rows, key_range, since, rate) -> Iterator[pa.RecordBatch]:
    """arrow-odbc: one streamed query per key range, fetched into Arrow buffers by FreeTDS ODBC.

    No per-row Python objects; a retry re-opens the query after the last key delivered.
    """
    from arrow_odbc import read_arrow_batches_from_odbc

    key = entity.key[0]  # composite keys page through pyodbc instead (see extract_entity)
    schema = entity.arrow_schema
    repair = needs_repair(source.charset.declared, source.charset.actual)
    char_key = entity.all_columns[key].base_type in _CHAR_TYPES
    last = key_range.lower if key_range else None
    upper = key_range.upper if key_range else None
    rate = rate or RateLimit(source.max_rows_per_second)
    attempt = 0
    while True:
        sql = page_query(
            entity,
            source,
            0,
            first_page=last is None,
            upper_bound=upper is not None,
            since=since.column if since else None,
        )
        params = [v for v in (last, upper, since.value if since else None) if v is not None]
        try:
            reader = read_arrow_batches_from_odbc(
                query=sql,
                connection_string=odbc_connection_string(source, endpoint),
                batch_size=batch_rows,
                parameters=[_as_text(p) for p in params] or None,
                schema=schema,
                login_timeout_sec=10,
            )
            for batch in reader:
                if batch.num_rows == 0:
                    continue
                if batch.schema != schema:
                    batch = batch.cast(schema)
                if repair:
                    batch = rows_to_batch(
                        list(zip(*(c.to_pylist() for c in batch.columns), strict=True)),
                        entity,
                        source.charset,
                    )
                tail = batch.column(key)[-1].as_py()
                last = tail.rstrip(" ") if char_key else tail
                attempt = 0
                rate.take(batch.num_rows)
                yield batch
            return
        except Exception as exc:
            if isinstance(exc, ExtractError) and not isinstance(exc, SourceUnavailable):
                raise
            attempt = _back_off(source, entity, exc, attempt)


def _back_off(source: SourceSpec, entity: EntitySpec, exc: Exception, attempt: int) -> int:
    """Wait before retry ``attempt + 1`` of a retryable failure, or raise when it is not one or retries ran out."""
    if not is_retryable(exc) or attempt >= source.retries:
        raise ExtractError(f"{entity.table}: query failed: {exc}") from exc
    wait = source.retry_backoff_seconds * (2**attempt)
    log.warning(
        "%s: %s; retry %d/%d in %.1fs, resuming after the last key delivered",
        entity.table,
        str(exc)[:200],
        attempt + 1,
        source.retries,
        wait,
    )
    time.sleep(wait)
    return attempt + 1


def _close(conn) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):  # a dead connection may refuse to close; it is gone either way
            conn.close()
