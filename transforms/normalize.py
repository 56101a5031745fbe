"""Normalize one extracted batch of one entity into unified rows plus quarantine rows.

Pure functions: Arrow in, Arrow out, no I/O. The city spec says which source
column feeds which unified column, how it is written (integer dates, fen,
floats, wide rows), which codes map to what and which values are sentinels;
the rules per unified column are the same for every city.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from extractors.charset import UNDECODABLE_COLUMN
from jinbao.spec import EntitySpec, SourceColumn
from loaders.schema import ENTITY_TABLES, quarantine
from transforms.codes import map_codes
from transforms.employer_codes import normalize_employer_codes
from transforms.identity import first_reason, normalize_id_numbers
from transforms.lookup import PersonIndex
from transforms.reasons import Reason
from transforms.text import parse_yyyymmdd, trim

# Money columns that must not be negative; other money may be negative (refunds, corrections).
NON_NEGATIVE = {"contribution_base"}
# A float amount further than this from a whole cent is not trusted to be an amount in yuan.
FLOAT_CENT_TOLERANCE = 1e-6


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
    """The columns a transform produces: everything but what the loader derives (scope, partition)."""
    table = ENTITY_TABLES[entity]
    return pa.schema(
        [
            pa.field(c.name, arrow_type(c), nullable=c.nullable)
            for c in table.columns
            if not c.info.get("derived")
        ]
    )


def money_columns_of(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if pa.types.is_decimal(f.type) and f.type.scale == 2]


def money_columns(entity: str) -> list[str]:
    return [
        c.name for c in ENTITY_TABLES[entity].columns if isinstance(c.type, sa.Numeric) and c.type.scale == 2
    ]


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field(c.name, pa.string())
        for c in quarantine.columns
        if c.name != "first_batch_id" and not c.info.get("derived")
    ]
)


@dataclass(frozen=True)
class NormalizedBatch:
    """Unified rows and quarantine rows of one batch, with the totals reconciliation needs.

    ``extracted_rows`` counts source rows after wide rows are split per insurance type;
    money is in unified units (yuan), so fen and float sources reconcile like the rest.
    """

    rows: pa.Table  # exactly unified_schema(entity)
    quarantined: pa.Table  # QUARANTINE_SCHEMA
    source_keys: pa.Array  # the source key of every output row, loaded or not
    extracted_rows: int
    extracted_money: Decimal
    quarantined_money: Decimal


def _json_default(v):
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _combine(a):
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def source_keys(batch: pa.Table, key: list[str]) -> pa.Array:
    parts = [_combine(trim(pc.cast(batch.column(k), pa.string()))) for k in key]
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")


# -- reading one source column ---------------------------------------------------------------
def _cents_from_decimal(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    cut = pc.cast(values, target, safe=False)
    lossy = pc.fill_null(pc.not_equal(pc.cast(cut, values.type, safe=False), values), False)
    return cut, lossy


EXACT = pa.decimal128(30, 6)  # source amounts as read, for reconciliation (sub-cent digits kept)


def read_money(
    values: pa.Array, col: SourceColumn, target: pa.DataType
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Source amount → yuan with two decimals; returns (values, not-a-whole-cent mask, exact source value).

    Never rounds silently: a value that is not a whole cent is flagged for quarantine, and
    its exact value still counts in the money reconciliation.
    """
    n = len(values)
    if col.base_type == "float":
        rounded = pc.round(values, 2)
        off = pc.fill_null(pc.greater(pc.abs(pc.subtract(values, rounded)), FLOAT_CENT_TOLERANCE), False)
        # the shortest repr of a value already rounded to cents has at most two decimals: parse it exactly
        cents = pc.cast(pc.cast(rounded, pa.string()), target)
        return cents, off, pc.cast(cents, EXACT)
    if col.unit == "fen":
        as_dec = pc.cast(values, pa.decimal128(20, 0))
        values = pc.multiply(as_dec, pa.scalar(Decimal("0.01"), pa.decimal128(3, 2)))
    if pa.types.is_decimal(values.type):
        cents, lossy = _cents_from_decimal(values, target)
        return cents, lossy, pc.cast(values, EXACT)
    if pa.types.is_integer(values.type):
        cents = pc.cast(values, target)
        return cents, pa.repeat(pa.scalar(False), n), pc.cast(cents, EXACT)
    raise TypeError(f"cannot read {col.type} as money")


def read_date(values: pa.Array, col: SourceColumn) -> pa.Array:
    if col.format == "yyyymmdd":
        return parse_yyyymmdd(_combine(trim(pc.cast(values, pa.string()))))
    if pa.types.is_timestamp(values.type):
        return pc.cast(pc.floor_temporal(values, unit="day"), pa.date32())
    return pc.cast(values, pa.date32())


def _sentinel_mask(values: pa.Array, sentinels: list[str]) -> pa.Array:
    if pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
        text = pc.cast(pc.cast(values, pa.date32()), pa.string())
    else:
        text = pc.cast(values, pa.string())
    return pc.fill_null(pc.is_in(text, pa.array(sentinels)), False)


# -- the frame: unified columns per output row, before checks --------------------------------
@dataclass
class _Frame:
    cols: dict[str, pa.Array]
    exact: dict[str, pa.Array]  # money columns as the source held them (sub-cent digits kept)
    lossy: pa.Array  # money not exact in cents
    key: pa.Array  # source key text per output row
    src: pa.Array  # index of the source row each output row came from
    n: int


def _read_columns(
    batch: pa.Table,
    columns: dict[str, SourceColumn],
    targets: dict[str, str],
    schema: pa.Schema,
    sentinels: dict[str, list[str]],
) -> tuple[dict[str, pa.Array], dict[str, pa.Array], pa.Array]:
    """Read source columns (by name) into unified types; ``targets`` maps source → unified column."""
    out: dict[str, pa.Array] = {}
    exact: dict[str, pa.Array] = {}
    lossy = pa.array([False] * batch.num_rows)
    for src, unified in targets.items():
        col = columns[src]
        values = _combine(batch.column(src))
        target = schema.field(unified).type if unified in schema.names else None
        if unified in sentinels:
            values = pc.if_else(
                _sentinel_mask(values, sentinels[unified]), pa.scalar(None, values.type), values
            )
        if col.is_text:
            values = _combine(trim(values))
        if target is None:
            out[unified] = values
        elif pa.types.is_decimal(target):
            values, bad, exact[unified] = read_money(values, col, target)
            lossy = pc.or_(lossy, bad)
            out[unified] = values
        elif pa.types.is_date32(target):
            out[unified] = read_date(values, col)
        elif pa.types.is_string(target):
            out[unified] = pc.cast(values, pa.string()) if not col.is_text else values
        else:
            out[unified] = pc.cast(values, target)
    return out, exact, lossy


def _frame(batch: pa.Table, entity: EntitySpec, schema: pa.Schema) -> _Frame:
    n = batch.num_rows
    base_targets = {src: c.to for src, c in entity.columns.items() if c.to}
    common, cexact, lossy = _read_columns(batch, entity.columns, base_targets, schema, entity.sentinels)
    for unified, src in entity.derive.items():  # a column read a second time, for another unified column
        common.update(_read_columns(batch, entity.columns, {src: unified}, schema, entity.sentinels)[0])
    key = source_keys(batch, entity.key)
    src = pa.array(range(n), pa.int64())
    if not entity.unpivot:
        return _Frame(common, cexact, lossy, key, src, n)

    up = entity.unpivot
    parts: list[_Frame] = []
    any_group = pa.repeat(pa.scalar(False), n)
    for code, mapping in up.groups.items():
        group, gexact, glossy = _read_columns(batch, up.columns, mapping, schema, entity.sentinels)
        lead = (
            "contribution_base" if "contribution_base" in mapping.values() else next(iter(mapping.values()))
        )
        present = pc.is_valid(group[lead])
        any_group = pc.or_(any_group, present)
        idx = pc.indices_nonzero(present)
        cols = {k: v.take(idx) for k, v in common.items()}
        cols.update({k: v.take(idx) for k, v in group.items()})
        m = len(idx)
        cols[up.column] = pa.array([code] * m, pa.string())
        exact = {k: v.take(idx) for k, v in {**cexact, **gexact}.items()}
        for money in money_columns_of(schema):
            if money not in cols:  # the source has no such amount for this insurance type: zero, not unknown
                cols[money] = pa.array([Decimal(0)] * m, schema.field(money).type)
                exact[money] = pa.array([Decimal(0)] * m, EXACT)
        gkey = pc.binary_join_element_wise(key.take(idx), pa.array([code] * m, pa.string()), "|")
        parts.append(_Frame(cols, exact, pc.or_(lossy, glossy).take(idx), gkey, pc.cast(idx, pa.int64()), m))
    # a wide row with no insurance type at all is kept (and will be quarantined), never dropped
    idx = pc.indices_nonzero(pc.invert(any_group))
    if len(idx):
        cols = {k: v.take(idx) for k, v in common.items()}
        exact = {k: v.take(idx) for k, v in cexact.items()}
        parts.append(_Frame(cols, exact, lossy.take(idx), key.take(idx), pc.cast(idx, pa.int64()), len(idx)))

    def merge(attr: str) -> dict[str, pa.Array]:
        names = dict.fromkeys(k for p in parts for k in getattr(p, attr))
        out = {}
        for name in names:
            typ = next(getattr(p, attr)[name].type for p in parts if name in getattr(p, attr))
            out[name] = pa.concat_arrays(
                [getattr(p, attr)[name] if name in getattr(p, attr) else pa.nulls(p.n, typ) for p in parts]
            )
        return out

    return _Frame(
        merge("cols"),
        merge("exact"),
        pa.concat_arrays([p.lossy for p in parts]),
        pa.concat_arrays([p.key for p in parts]),
        pa.concat_arrays([p.src for p in parts]),
        sum(p.n for p in parts),
    )


def _row_money(exact: dict[str, pa.Array], money: list[str], n: int) -> pa.Array:
    """Per output row, the sum of its money columns exactly as the source held them."""
    # each addition widens the precision by one digit: start narrow, end at 38
    total = pa.repeat(pa.scalar(Decimal(0), pa.decimal128(30, 6)), n)
    for m in money:
        if m in exact:
            total = pc.cast(pc.add(total, pc.fill_null(exact[m], Decimal(0))), pa.decimal128(30, 6))
    return total


def _sum(values: pa.Array) -> Decimal:
    s = pc.sum(values).as_py()
    if s is None:
        return Decimal("0.00")
    s = Decimal(s)
    cents = s.quantize(Decimal("0.01"))
    return cents if cents == s else s.normalize()


def normalize_batch(
    entity_name: str,
    batch: pa.Table | pa.RecordBatch,
    entity: EntitySpec,
    city: str,
    person_index: pa.Table | PersonIndex | None = None,
) -> NormalizedBatch:
    """Source batch (source column names) → unified rows + quarantine rows, one reason per quarantined row."""
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    batch = batch.combine_chunks()
    schema = unified_schema(entity_name)
    frame = _frame(batch, entity, schema)
    cols, n = frame.cols, frame.n
    if "source_key" in schema.names:
        cols["source_key"] = frame.key

    first: list[tuple[pa.Array, pa.Array | str]] = []  # reasons that win over every other check
    checks: list[tuple[pa.Array, str]] = []
    if UNDECODABLE_COLUMN in batch.column_names:
        undecodable = _combine(batch.column(UNDECODABLE_COLUMN)).take(frame.src)
        first.append((pc.is_valid(undecodable), Reason.UNDECODABLE_TEXT))

    if entity_name in ("person", "person_xref"):
        sex, sex_unmapped = map_codes(cols["sex"], entity.codes.get("sex", {}))
        idc = normalize_id_numbers(cols["id_number"], cols["birth_date"], sex)
        cols["id_number"], cols["sex"] = idc.id_number, sex
        first.append((pc.is_valid(idc.reason), idc.reason))
        checks.append((pc.fill_null(pc.equal(pc.utf8_length(cols["name"]), 0), True), Reason.NAME_MISSING))
        checks.append((pc.is_null(cols["birth_date"]), Reason.DATE_INVALID))
        checks.append((sex_unmapped, Reason.UNMAPPED_CODE))
    elif "source_person_no" in cols:
        if person_index is None:
            raise ValueError(f"{entity_name} needs the person index to resolve person numbers")
        if not isinstance(person_index, PersonIndex):
            person_index = PersonIndex(person_index)  # callers loading many pages pass one, built once
        idx = person_index.positions(cols["source_person_no"])
        cols["id_number"] = pc.take(person_index.column("id_number"), idx)
        first.append((pc.is_null(idx), Reason.PERSON_NOT_LOADED))

    if entity_name == "employer":
        missing = pa.nulls(n, pa.string())
        codes = normalize_employer_codes(
            cols.get("org_code", missing), cols.get("uscc"), city, cols["employer_no"]
        )
        cols["org_code"], cols["uscc"], cols["employer_id"] = codes.org_code, codes.uscc, codes.employer_id
        checks.append((pc.is_valid(codes.reason), Reason.EMPLOYER_CODE_INVALID))

    code_fields = [f for f in entity.codes if not (entity_name == "person" and f == "sex")]
    for field in code_fields:
        cols[field], unmapped = map_codes(cols[field], entity.codes[field])
        checks.append((unmapped, Reason.UNMAPPED_CODE))

    if entity.unpivot:  # a wide row that paid no insurance type at all
        checks.append((pc.is_null(cols[entity.unpivot.column]), Reason.VALUE_MISSING))
    money = [m for m in money_columns(entity_name) if m in schema.names]
    bad_money = frame.lossy
    for m in money:
        if m not in cols:
            continue
        bad_money = pc.or_(bad_money, pc.is_null(cols[m]))
        if m in NON_NEGATIVE:
            bad_money = pc.or_(bad_money, pc.fill_null(pc.less(cols[m], 0), False))
    checks.append((bad_money, Reason.AMOUNT_INVALID))

    for f in schema:
        if (
            not f.nullable
            and f.name in cols
            and f.name not in ("id_number", "name", "sex", "birth_date", *money)
        ):
            code = Reason.DATE_INVALID if pa.types.is_date(f.type) else Reason.VALUE_MISSING
            checks.append((pc.is_null(cols[f.name]), code))

    reason = first_reason(checks, n)
    for mask, code in reversed(first):
        reason = pc.if_else(mask, code if isinstance(code, pa.Array) else pa.scalar(str(code)), reason)

    cols["source_city"] = pa.repeat(pa.scalar(city, pa.string()), n)
    loose = pa.schema([f.with_nullable(True) for f in schema])
    out = [cols[f.name] if f.name in cols else pa.nulls(n, f.type) for f in schema]
    out = [
        a if a.type == f.type else pc.cast(a, f.type, safe=not pa.types.is_decimal(f.type))
        for a, f in zip(out, schema, strict=True)
    ]
    unified = pa.Table.from_arrays(out, schema=loose)

    row_money = _row_money(frame.exact, money, n)
    bad = pc.fill_null(pc.is_valid(reason), False)
    rows = unified.filter(pc.invert(bad)).cast(schema)
    q_idx = pc.indices_nonzero(bad)
    q_src = batch.take(frame.src.take(q_idx))
    q_reason = reason.take(q_idx)
    q_rows = q_src.to_pylist()  # quarantined rows are rare: their details and originals are per-row Python
    quarantined = pa.table(
        {
            "source_city": pa.repeat(pa.scalar(city, pa.string()), len(q_idx)),
            "entity": pa.repeat(pa.scalar(entity_name, pa.string()), len(q_idx)),
            "source_key": frame.key.take(q_idx),
            "reason_code": q_reason,
            "reason_detail": pa.array(_details(q_rows, q_reason, entity, code_fields), pa.string()),
            "original_values": pa.array(
                [json.dumps(r, ensure_ascii=False, default=_json_default) for r in q_rows], pa.string()
            ),
        },
        schema=QUARANTINE_SCHEMA,
    )
    return NormalizedBatch(
        rows=rows,
        quarantined=quarantined,
        # a wide row's own key too: it was quarantined under it while it paid no insurance type
        source_keys=pa.concat_arrays([frame.key, source_keys(batch, entity.key)])
        if entity.unpivot
        else frame.key,
        extracted_rows=n,
        extracted_money=_sum(row_money),
        quarantined_money=_sum(row_money.take(q_idx)),
    )


def _details(
    src_rows: list[dict], reasons: pa.Array, entity: EntitySpec, code_fields: list[str]
) -> list[str]:
    """Short human-readable detail per quarantined row (rare rows: a Python loop is fine here)."""
    out = []
    for row, code in zip(src_rows, reasons.to_pylist(), strict=True):
        if code == Reason.UNMAPPED_CODE:
            bad = []
            for field in dict.fromkeys(["sex", *code_fields]):
                if field in entity.codes and any(c.to == field for c in entity.columns.values()):
                    src = entity.source_for(field)
                    v = row.get(src)
                    v = v.strip(" \u3000") if isinstance(v, str) else v
                    if v is not None and str(v) not in entity.codes[field]:
                        bad.append(f"{src}={v!r} not in the {field} map")
            out.append("; ".join(bad) or "a code value is not mapped")
        elif code == Reason.PERSON_NOT_LOADED:
            out.append("person number not among the loaded persons of this city")
        elif code == Reason.UNDECODABLE_TEXT:
            out.append(f"bytes not valid in the city's actual charset: {row.get(UNDECODABLE_COLUMN)}")
        elif code == Reason.EMPLOYER_CODE_INVALID:
            out.append(
                "organization code or unified social credit code malformed, with a wrong check character, "
                "or the two disagreeing"
            )
        elif code == Reason.AMOUNT_INVALID:
            out.append("an amount is missing, negative where it cannot be, or not a whole cent")
        else:
            out.append(code.replace("_", " ").lower())
    return out
