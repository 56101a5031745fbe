"""Stream one entity's legacy table as Arrow record batches, keyset-paged.

Each page is ``SELECT TOP n ... WHERE key > last ORDER BY key``: never OFFSET,
so a page costs the same at row 10 and row 10 million, and memory is bounded
by one page. Values pass through the driver as Python objects and are put
into Arrow with the spec's exact types (Decimal stays decimal, bigint int64).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from extractors.charset import UNDECODABLE_COLUMN, needs_repair, repair_values
from extractors.configuration import SourceEndpoint
from extractors.drivers import connect, placeholder
from extractors.exceptions import ExtractError
from jinbao.spec import Charset, EntitySpec, SourceSpec

_CHAR_TYPES = ("char", "nchar")


def _quote(ident: str) -> str:
    return ".".join(f"[{part}]" for part in ident.split("."))


def page_query(entity: EntitySpec, source: SourceSpec, page_rows: int, first_page: bool) -> str:
    """The T-SQL for one keyset page; later pages compare the key tuple with parameters."""
    cols = ", ".join(_quote(c) for c in entity.all_columns)
    order = ", ".join(_quote(k) for k in entity.key)
    sql = f"SELECT TOP {int(page_rows)} {cols} FROM {_quote(entity.table)}"
    if not first_page:
        mark = placeholder(source)
        # (k1 > ?) OR (k1 = ? AND k2 > ?) OR ...: portable to ASE, which has no row-value comparison.
        terms = []
        for i, k in enumerate(entity.key):
            eqs = [f"{_quote(p)} = {mark}" for p in entity.key[:i]]
            terms.append("(" + " AND ".join([*eqs, f"{_quote(k)} > {mark}"]) + ")")
        sql += " WHERE " + " OR ".join(terms)
    return sql + f" ORDER BY {order}"


def _page_params(key_values: Sequence[Any]) -> list[Any]:
    params: list[Any] = []
    for i in range(len(key_values)):
        params.extend(key_values[: i + 1])
    return params


def rows_to_batch(rows: list[tuple], entity: EntitySpec, charset: Charset | None = None) -> pa.RecordBatch:
    """Column-wise conversion with the spec's types; a value that does not fit raises, never rounds.

    When the city's text is stored in another charset than the server declares, text
    columns are repaired; rows with undecodable bytes get ``__undecodable__`` (column=hex).
    """
    schema = entity.arrow_schema
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    repair = charset is not None and needs_repair(charset.declared, charset.actual)
    undecodable: list[str | None] = [None] * len(rows)
    arrays = []
    for field, values, col in zip(schema, columns, entity.all_columns.values(), strict=True):
        if repair and col.is_text:
            values, bad = repair_values(list(values), charset.declared, charset.actual)
            for i, b in enumerate(bad):
                if b is not None:
                    note = f"{field.name}={b}"
                    undecodable[i] = note if undecodable[i] is None else f"{undecodable[i]}; {note}"
        try:
            arrays.append(pa.array(values, type=field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ExtractError(f"{entity.table}.{field.name}: value does not fit {field.type}: {exc}") from exc
    if any(u is not None for u in undecodable):
        arrays.append(pa.array(undecodable, pa.string()))
        schema = schema.append(pa.field(UNDECODABLE_COLUMN, pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def extract_entity(
    source: SourceSpec, entity: EntitySpec, endpoint: SourceEndpoint, *, page_rows: int | None = None
) -> Iterator[pa.RecordBatch]:
    """Yield the whole table, page by page, as record batches with ``entity.arrow_schema``."""
    page_rows = page_rows or source.batch_rows
    key_idx = [list(entity.all_columns).index(k) for k in entity.key]
    char_key = [entity.columns[k].base_type in _CHAR_TYPES for k in entity.key]
    conn = connect(source, endpoint)
    try:
        cur = conn.cursor()
        last: list[Any] | None = None
        while True:
            sql = page_query(entity, source, page_rows, first_page=last is None)
            try:
                if last is None:
                    cur.execute(sql)
                else:
                    cur.execute(sql, tuple(_page_params(last)))
                rows = cur.fetchall()
            except Exception as exc:
                raise ExtractError(f"{entity.table}: query failed: {exc}") from exc
            if rows:
                yield rows_to_batch([tuple(r) for r in rows], entity, source.charset)
            if len(rows) < page_rows:
                return
            tail = rows[-1]
            # CHAR keys come back blank-padded; the server compares ignoring trailing blanks.
            last = [tail[i].rstrip(" ") if is_char else tail[i] for i, is_char in zip(key_idx, char_key, strict=True)]
    finally:
        conn.close()
