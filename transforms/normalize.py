"""Normalize one extracted batch of one entity into unified rows plus quarantine rows.

Pure functions: Arrow in, Arrow out, no I/O. The city spec says which source
column feeds which unified column, which codes map to what and which values
are sentinels; the rules per unified column are the same for every city.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from jinbao.spec import EntitySpec
from loaders.schema import ENTITY_TABLES, quarantine
from transforms.codes import map_codes
from transforms.identity import first_reason, normalize_id_numbers
from transforms.reasons import Reason
from transforms.text import trim

# Money columns that must be present and not negative; other money may be negative (refunds).
NON_NEGATIVE = {"contribution_base"}


def arrow_type(col: sa.Column) -> pa.DataType:
    t = col.type
    if isinstance(t, sa.Numeric) and not isinstance(t, sa.Float):
        return pa.decimal128(t.precision, t.scale)
    if isinstance(t, sa.BigInteger):
        return pa.int64()
    if isinstance(t, sa.SmallInteger):
        return pa.int16()
    if isinstance(t, sa.Integer):
        return pa.int32()
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us")
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.String | sa.Text):
        return pa.string()
    raise TypeError(f"no Arrow type for {col.name}: {t!r}")


def unified_schema(entity: str) -> pa.Schema:
    table = ENTITY_TABLES[entity]
    return pa.schema([pa.field(c.name, arrow_type(c), nullable=c.nullable) for c in table.columns])


def money_columns(entity: str) -> list[str]:
    return [c.name for c in ENTITY_TABLES[entity].columns if isinstance(c.type, sa.Numeric) and c.type.scale == 2]


QUARANTINE_SCHEMA = pa.schema(
    [pa.field(c.name, pa.string()) for c in quarantine.columns if c.name != "first_batch_id"]
)


@dataclass(frozen=True)
class NormalizedBatch:
    rows: pa.Table  # unified rows, exactly unified_schema(entity)
    quarantined: pa.Table  # QUARANTINE_SCHEMA
    quarantined_source: pa.Table  # the source rows that were quarantined, for money reconciliation


def source_keys(batch: pa.Table, entity: EntitySpec) -> pa.Array:
    parts = [trim(pc.cast(batch.column(k), pa.string())) for k in entity.key]
    if len(parts) == 1:
        return parts[0].combine_chunks() if isinstance(parts[0], pa.ChunkedArray) else parts[0]
    out = pc.binary_join_element_wise(*parts, "|")
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def _json_default(v):
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _to_unified_type(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Cast to the unified type; returns (values, lossy mask). Lossy rows are quarantined, never rounded."""
    n = len(values)
    no_loss = pa.array([False] * n)
    if values.type == target:
        return values, no_loss
    if pa.types.is_decimal(target) and pa.types.is_decimal(values.type):
        cut = pc.cast(values, target, safe=False)
        lossy = pc.fill_null(pc.not_equal(pc.cast(cut, values.type, safe=False), values), False)
        return cut, lossy
    if pa.types.is_date32(target) and pa.types.is_timestamp(values.type):
        return pc.cast(pc.floor_temporal(values, unit="day"), pa.date32()), no_loss
    return pc.cast(values, target), no_loss


def normalize_batch(
    entity_name: str,
    batch: pa.Table | pa.RecordBatch,
    entity: EntitySpec,
    city: str,
    person_index: pa.Table | None = None,
) -> NormalizedBatch:
    """Source batch (source column names) → unified rows + quarantine rows, one reason per quarantined row."""
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    batch = batch.combine_chunks()
    n = batch.num_rows
    schema = unified_schema(entity_name)
    cols: dict[str, pa.Array] = {}
    checks: list[tuple[pa.Array, str]] = []

    for src, col in entity.columns.items():
        values = batch.column(src).chunk(0) if batch.column(src).num_chunks else pa.array([], batch.schema.field(src).type)
        if pa.types.is_string(values.type):
            values = trim(values)
        sentinels = entity.sentinels.get(col.to)
        if sentinels:
            as_text = pc.cast(pc.cast(values, pa.date32()), pa.string()) if pa.types.is_timestamp(values.type) else pc.cast(values, pa.string())
            values = pc.if_else(pc.is_in(as_text, pa.array(sentinels)), pa.scalar(None, values.type), values)
        cols[col.to] = values

    reasons_person: list[tuple[pa.Array, str]] = []
    if entity_name == "person":
        sex, sex_unmapped = map_codes(cols["sex"], entity.codes.get("sex", {}))
        birth = _to_unified_type(cols["birth_date"], pa.date32())[0]
        idc = normalize_id_numbers(cols["id_number"], birth, sex)
        cols["id_number"] = idc.id_number
        cols["sex"] = sex
        reasons_person.append((pc.is_valid(idc.reason), idc.reason))
        name_missing = pc.fill_null(pc.equal(pc.utf8_length(cols["name"]), 0), True)
        checks.append((name_missing, Reason.NAME_MISSING))
        checks.append((pc.is_null(birth), Reason.DATE_INVALID))
        checks.append((sex_unmapped, Reason.UNMAPPED_CODE))

    if "source_person_no" in cols and entity_name != "person":
        if person_index is None:
            raise ValueError(f"{entity_name} needs the person index to resolve person numbers")
        idx = pc.index_in(cols["source_person_no"], value_set=person_index.column("source_person_no"))
        cols["id_number"] = pc.take(person_index.column("id_number"), idx)
        reasons_person.append((pc.is_null(idx), pa.scalar(str(Reason.PERSON_NOT_LOADED))))

    unmapped_cols: list[str] = []
    for field, mapping in entity.codes.items():
        if entity_name == "person" and field == "sex":
            continue
        mapped, unmapped = map_codes(cols[field], mapping)
        cols[field] = mapped
        checks.append((unmapped, Reason.UNMAPPED_CODE))
        unmapped_cols.append(field)

    lossy_any = pa.array([False] * n)
    for money in money_columns(entity_name):
        if money in cols:
            values, lossy = _to_unified_type(cols[money], schema.field(money).type)
            cols[money] = values
            bad = pc.or_(lossy, pc.is_null(values))
            if money in NON_NEGATIVE:
                bad = pc.or_(bad, pc.fill_null(pc.less(values, 0), False))
            lossy_any = pc.or_(lossy_any, bad)
    checks.append((lossy_any, Reason.AMOUNT_INVALID))

    # Required (NOT NULL) unified columns that are still NULL: a date or value the source lacks.
    for f in schema:
        if not f.nullable and f.name in cols and f.name not in ("id_number", "name", "sex", "birth_date"):
            if pa.types.is_date(f.type):
                code = Reason.DATE_INVALID
            elif pa.types.is_decimal(f.type):
                code = Reason.AMOUNT_INVALID
            else:
                code = Reason.VALUE_MISSING
            checks.append((pc.is_null(cols[f.name]), code))

    # Precedence: person-level reasons (ID checks, unresolved person) first, then the rest in order.
    reason = first_reason(checks, n)
    for mask, code in reversed(reasons_person):
        reason = pc.if_else(mask, code, reason)

    cols["source_city"] = pa.array([city] * n, pa.string())
    out_cols = []
    for f in schema:
        if f.name in cols:
            values, _ = _to_unified_type(cols[f.name], f.type)
        else:
            values = pa.nulls(n, f.type)
        out_cols.append(values)
    unified = pa.Table.from_arrays(out_cols, schema=schema.remove_metadata().with_metadata(None)).cast(
        pa.schema([f.with_nullable(True) for f in schema])
    )

    bad = pc.is_valid(reason)
    keep = pc.invert(bad)
    rows = unified.filter(keep).cast(schema) if n else unified.cast(schema)
    qsource = batch.filter(bad)
    qkeys = source_keys(qsource, entity)
    qreason = reason.filter(bad)
    qdetail = _details(qsource, qreason, entity, unified.filter(bad), unmapped_cols)
    originals = [json.dumps(r, ensure_ascii=False, default=_json_default) for r in qsource.to_pylist()]
    quarantined = pa.table(
        {
            "source_city": pa.array([city] * qsource.num_rows, pa.string()),
            "entity": pa.array([entity_name] * qsource.num_rows, pa.string()),
            "source_key": qkeys,
            "reason_code": qreason,
            "reason_detail": pa.array(qdetail, pa.string()),
            "original_values": pa.array(originals, pa.string()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    return NormalizedBatch(rows=rows, quarantined=quarantined, quarantined_source=qsource)


def _details(qsource: pa.Table, reasons: pa.Array, entity: EntitySpec, unified: pa.Table, code_cols: list[str]) -> list[str]:
    """Short human-readable detail per quarantined row (rare rows: a Python loop is fine here)."""
    out = []
    src_rows = qsource.to_pylist()
    for i, code in enumerate(reasons.to_pylist()):
        row = src_rows[i]
        if code == Reason.UNMAPPED_CODE:
            bad = []
            for field in ["sex", *code_cols]:
                if field in entity.codes:
                    src = entity.source_for(field)
                    v = row.get(src)
                    v = v.strip(" \u3000") if isinstance(v, str) else v
                    if v is not None and str(v) not in entity.codes[field]:
                        bad.append(f"{src}={v!r} not in the {field} map")
            out.append("; ".join(bad) or "a code value is not mapped")
        elif code == Reason.PERSON_NOT_LOADED:
            out.append("person number not among the loaded persons of this city")
        else:
            out.append(code.replace("_", " ").lower())
    return out
