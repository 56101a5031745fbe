"""Schema drift: compare the live source table with the city spec before extracting it.

Uses the result metadata of ``SELECT * ... WHERE 1 = 0``, which both SQL Server
and ASE answer without catalog permissions. pyodbc reports lengths, precision
and scale; pymssql only type classes, so it catches fewer kinds of drift.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from extractors.configuration import SourceEndpoint
from extractors.drivers import connect
from extractors.exceptions import ExtractError
from jinbao.spec import EntitySpec, SourceColumn, SourceSpec

_CLASS = {
    "char": "text",
    "varchar": "text",
    "nchar": "text",
    "nvarchar": "text",
    "univarchar": "text",
    "unichar": "text",
    "text": "text",
    "ntext": "text",
    "unitext": "text",
    "int": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "tinyint": "integer",
    "bit": "integer",
    "decimal": "decimal",
    "numeric": "decimal",
    "money": "decimal",
    "smallmoney": "decimal",
    "datetime": "datetime",
    "datetime2": "datetime",
    "smalldatetime": "datetime",
    "date": "datetime",
    "float": "float",
    "real": "float",
}
_PYODBC_CLASS = {
    str: "text",
    int: "integer",
    Decimal: "decimal",
    dt.datetime: "datetime",
    float: "float",
    bool: "integer",
    bytes: "binary",
    dt.date: "datetime",
}


class SchemaDriftError(ExtractError):
    """The source no longer looks like the spec; the message is the diff."""


@dataclass(frozen=True)
class Drift:
    table: str
    differences: list[str]  # each one line: what the spec says, what the source has
    new_columns: list[str]  # in the source, not in the spec (not read; informational)

    def __str__(self) -> str:
        lines = [f"{self.table}: source differs from the city spec"] + [f"  - {d}" for d in self.differences]
        if self.new_columns:
            lines.append(f"  (new source columns not in the spec, ignored: {', '.join(self.new_columns)})")
        return "\n".join(lines)


def _pymssql_class(type_code: int) -> str | None:
    import pymssql

    if type_code == pymssql.STRING:
        return "text"
    if type_code == pymssql.DECIMAL:
        return "decimal"
    if type_code == pymssql.DATETIME:
        return "datetime"
    if type_code == pymssql.NUMBER:
        return "number"  # integer or float: pymssql does not tell them apart
    return None


def _compare(name: str, spec: SourceColumn, desc: tuple, driver: str) -> list[str]:
    want = _CLASS[spec.base_type]
    if driver == "pymssql":
        got = _pymssql_class(desc[1])
        if got == "number" and want in ("integer", "float"):
            return []
        return [] if got == want else [f"{name}: spec {spec.type}, source type class {got}"]
    got = _PYODBC_CLASS.get(desc[1])
    if got != want and not (want == "datetime" and got == "datetime"):
        return [f"{name}: spec {spec.type}, source {getattr(desc[1], '__name__', desc[1])}"]
    out = []
    size, precision, scale = desc[3], desc[4], desc[5]
    if want == "decimal" and spec.base_type not in ("money", "smallmoney"):
        p, s = spec.arrow_type.precision, spec.arrow_type.scale
        if (precision, scale) != (p, s):
            out.append(f"{name}: spec {spec.type}, source decimal({precision},{scale})")
    if want == "text" and spec.length is not None:
        length = spec.length
        if size and int(size) != length:
            out.append(f"{name}: spec {spec.type}, source length {size}")
    return out


def check_schema(source: SourceSpec, entity: EntitySpec, endpoint: SourceEndpoint) -> Drift:
    conn = connect(source, endpoint)
    try:
        cur = conn.cursor()
        table = ".".join(f"[{p}]" for p in entity.table.split("."))
        try:
            cur.execute(f"SELECT * FROM {table} WHERE 1 = 0")
        except Exception as exc:
            return Drift(entity.table, [f"table cannot be read: {exc}"], [])
        description = {d[0].lower(): d for d in cur.description or []}
        cur.fetchall()
    finally:
        conn.close()
    differences: list[str] = []
    for name, spec in entity.all_columns.items():
        desc = description.get(name.lower())
        if desc is None:
            differences.append(f"{name}: in the spec ({spec.type}), missing in the source")
            continue
        differences += _compare(name, spec, desc, source.driver)
    new = [d[0] for key, d in description.items() if key not in {c.lower() for c in entity.all_columns}]
    return Drift(entity.table, differences, new)
