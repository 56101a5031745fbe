"""City mapping specs: everything that makes one city different, loaded from ``cities/*.yml``.

A spec is validated into typed objects when loaded; errors name the file, the
field and the bad value, so a migration lead can fix the YAML without reading code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from jinbao.errors import SpecError

CITIES_DIR = Path(os.environ.get("JINBAO_CITIES_DIR") or Path(__file__).resolve().parent.parent / "cities")
ENTITY_ORDER = ("employer", "person", "enrolment", "contribution", "account")

_TYPE_RE = re.compile(
    r"^(?P<name>char|varchar|nchar|nvarchar|univarchar|unichar|text|ntext|unitext|int|bigint|smallint|tinyint|bit"
    r"|decimal|numeric|money|smallmoney|datetime2|datetime|smalldatetime|date|float|real)"
    r"(?:\((?P<a>\d+|max)(?:,\s*(?P<b>\d+))?\))?$"
)
TEXT_TYPES = ("char", "varchar", "nchar", "nvarchar", "univarchar", "unichar", "text", "ntext", "unitext")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceColumn(_Strict):
    """One legacy column: its declared SQL type, how to read it, and the unified column it feeds.

    ``to`` is omitted for a column that only serves as key or watermark. ``format: yyyymmdd``
    reads an integer or text date; ``unit: fen`` reads integer cents as exact yuan.
    """

    type: str
    to: str | None = None
    format: Literal["yyyymmdd"] | None = None
    unit: Literal["yuan", "fen"] = "yuan"

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        v = v.strip().lower()
        m = _TYPE_RE.match(v)
        if not m:
            raise ValueError(f"unknown legacy SQL type {v!r}")
        if m["name"] in ("char", "varchar", "nchar", "nvarchar", "univarchar", "unichar") and not m["a"]:
            raise ValueError(f"{v!r} needs a length (or max)")
        if m["name"] in ("decimal", "numeric") and not m["a"]:
            raise ValueError(f"{v!r} needs a precision and scale")
        return v

    @property
    def base_type(self) -> str:
        return _TYPE_RE.match(self.type)["name"]

    @property
    def arrow_type(self) -> pa.DataType:
        """The exact Arrow type the extractor produces for this column."""
        m = _TYPE_RE.match(self.type)
        name = m["name"]
        if name in TEXT_TYPES:
            return pa.string()
        simple = {
            "int": pa.int32(),
            "bigint": pa.int64(),
            "smallint": pa.int16(),
            "tinyint": pa.int16(),
            "bit": pa.bool_(),
            "money": pa.decimal128(19, 4),
            "smallmoney": pa.decimal128(10, 4),
            "float": pa.float64(),
            "real": pa.float32(),
            "date": pa.date32(),
            # DATETIME's 1/300 s and DATETIME2's 100 ns both fit microseconds (DATETIME2(7) loses its last digit)
            "datetime": pa.timestamp("us"),
            "smalldatetime": pa.timestamp("us"),
            "datetime2": pa.timestamp("us"),
        }
        if name in simple:
            return simple[name]
        if name in ("decimal", "numeric"):
            return pa.decimal128(int(m["a"]), int(m["b"] or 0))
        raise AssertionError(name)

    @property
    def is_text(self) -> bool:
        return self.base_type in TEXT_TYPES

    @property
    def length(self) -> int | None:
        """Declared length of a text column (None for max, text and other types)."""
        a = _TYPE_RE.match(self.type)["a"]
        return int(a) if a and a.isdigit() and self.is_text else None


class UnpivotSpec(_Strict):
    """Wide rows (one column set per insurance type) read as one unified row per type.

    ``groups`` maps a national code to {source column: unified column}; a group whose
    ``contribution_base`` (or first mapped column) is NULL yields no row.
    """

    column: str
    groups: dict[str, dict[str, str]] = Field(min_length=1)
    columns: dict[str, SourceColumn]

    @model_validator(mode="after")
    def _typed(self) -> UnpivotSpec:
        for code, mapping in self.groups.items():
            for src in mapping:
                if src not in self.columns:
                    raise ValueError(f"group {code!r}: column {src!r} has no type under unpivot.columns")
        return self


class EntitySpec(_Strict):
    """How one unified entity is read from this city's legacy table."""

    table: str
    key: list[str] = Field(min_length=1)
    columns: dict[str, SourceColumn]
    codes: dict[str, dict[str, str]] = {}
    sentinels: dict[str, list[str]] = {}
    unpivot: UnpivotSpec | None = None
    watermark: str | None = None
    # unified column -> source column already read for another unified column: one legacy column that
    # says two things (Qiqihar's working/retired status is both the participation and the retired flag)
    derive: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> EntitySpec:
        for k in self.key:
            if k not in self.columns:
                raise ValueError(f"key column {k!r} is not among the columns")
        for unified, src in self.derive.items():
            if src not in self.columns:
                raise ValueError(f"derive.{unified}: column {src!r} is not among the columns")
            if any(c.to == unified for c in self.columns.values()):
                raise ValueError(f"derive.{unified}: {unified!r} is already fed by a column")
        if self.watermark and self.watermark not in self.all_columns:
            raise ValueError(f"watermark column {self.watermark!r} is not among the columns")
        targets = set(self.unified_columns)
        for field in list(self.codes) + list(self.sentinels):
            if field not in targets:
                raise ValueError(f"{field!r} in codes/sentinels is not a mapped unified column")
        return self

    @property
    def all_columns(self) -> dict[str, SourceColumn]:
        """Every source column read, wide-row group columns included, in select order."""
        cols = dict(self.columns)
        if self.unpivot:
            cols.update(self.unpivot.columns)
        return cols

    @property
    def unified_columns(self) -> list[str]:
        out = [c.to for c in self.columns.values() if c.to]
        out += [u for u in self.derive if u not in out]
        if self.unpivot:
            out.append(self.unpivot.column)
            for mapping in self.unpivot.groups.values():
                out.extend(u for u in mapping.values() if u not in out)
        return out

    def source_for(self, unified: str) -> str:
        for src, col in self.columns.items():
            if col.to == unified:
                return src
        raise KeyError(unified)

    @property
    def arrow_schema(self) -> pa.Schema:
        """Schema of the extracted batches: source column names, exact types."""
        return pa.schema([pa.field(name, col.arrow_type) for name, col in self.all_columns.items()])


class Charset(_Strict):
    declared: str
    actual: str


class SourceSpec(_Strict):
    dialect: Literal["mssql", "sybase"] = "mssql"
    # arrow_odbc: FreeTDS ODBC read straight into Arrow buffers (no per-row Python objects): the fast path
    driver: Literal["pymssql", "pyodbc", "arrow_odbc"] = "pymssql"
    tds_version: Literal["7.0", "7.1", "7.2", "7.3", "7.4", "5.0"] = "7.4"
    database: str
    charset: Charset
    conn_id: str
    env_prefix: str
    max_connections: int = Field(default=2, ge=1, le=16)
    batch_rows: int = Field(default=20_000, ge=100, le=1_000_000)
    max_rows_per_second: int | None = Field(default=None, ge=1)  # be polite to a live city system
    retries: int = Field(default=5, ge=0, le=50)  # dropped connections and deadlocks, with backoff
    retry_backoff_seconds: float = Field(default=0.5, ge=0)
    lookback_seconds: int = Field(default=172_800, ge=0)  # incremental: re-read rows committed late (2 days)
    on_schema_drift: Literal["stop", "warn"] = "stop"

    @model_validator(mode="after")
    def _protocol_fits_dialect(self) -> SourceSpec:
        # FreeTDS's "auto" against ASE fails or degrades, and TDS 4.2 cuts varchar at 255 bytes:
        # every city names its protocol, and it must be one its server speaks.
        if self.dialect == "sybase" and self.tds_version != "5.0":
            raise ValueError(f"a Sybase ASE source speaks TDS 5.0, not {self.tds_version}")
        if self.dialect == "mssql" and self.tds_version == "5.0":
            raise ValueError("a SQL Server source speaks TDS 7.x, not 5.0")
        if self.driver == "arrow_odbc" and self.dialect == "sybase":
            raise ValueError("arrow_odbc reads SQL Server sources; use pymssql for Sybase ASE")
        return self


class SimulatorSpec(_Strict):
    variant: str


class CitySpec(_Strict):
    city: str
    display_name: str
    division_code: str = Field(pattern=r"^\d{6}$")
    source: SourceSpec
    simulator: SimulatorSpec | None = None
    entities: dict[str, EntitySpec]

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, v: dict[str, EntitySpec]) -> dict[str, EntitySpec]:
        unknown = set(v) - set(ENTITY_ORDER)
        if unknown:
            raise ValueError(f"unknown entities {sorted(unknown)}; known: {list(ENTITY_ORDER)}")
        missing = {"person"} - set(v)
        if missing:
            raise ValueError("a city spec needs at least the person entity")
        return v

    @model_validator(mode="after")
    def _targets_exist(self) -> CitySpec:
        from loaders.schema import ENTITY_TABLES

        derived_here = {
            "id_number",
            "source_city",
            "source_key",
            "employer_id",
        }  # filled by jinbao, not by a column
        for name, entity in self.entities.items():
            known = {c.name for c in ENTITY_TABLES[name].columns if not c.info.get("derived")}
            known |= {"source_person_no"}
            targets = [c.to for c in entity.columns.values() if c.to] + list(entity.derive)
            for target in targets:
                if target not in known:
                    raise ValueError(
                        f"entities.{name}: unknown unified column {target!r}; known: {sorted(known)}"
                    )
                if target in derived_here and not (name == "person" and target == "id_number"):
                    raise ValueError(
                        f"entities.{name}: {target!r} is derived by jinbao, not read from a column"
                    )
            dupes = {t for t in targets if targets.count(t) > 1}
            if dupes:
                raise ValueError(f"entities.{name}: more than one source column feeds {sorted(dupes)}")
        return self

    def ordered_entities(self) -> list[tuple[str, EntitySpec]]:
        return [(name, self.entities[name]) for name in ENTITY_ORDER if name in self.entities]


def load_spec(path: str | Path) -> CitySpec:
    """Load and validate one city spec file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read spec: {exc}") from exc
    try:
        return CitySpec.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if err["loc"]:
                loc = ".".join(str(p) for p in err["loc"])
                lines.append(f"  {loc}: {err['msg']} (got {err.get('input')!r})"[:300])
            else:  # a rule over the whole spec: its input is the whole spec, not worth repeating
                lines.append(f"  {err['msg']}"[:300])
        raise SpecError(f"{path}: invalid city spec\n" + "\n".join(lines)) from None


def city_spec(city: str, cities_dir: Path | None = None) -> CitySpec:
    cities_dir = cities_dir or CITIES_DIR  # read when called: tests and JINBAO_CITIES_DIR point it elsewhere
    path = cities_dir / f"{city}.yml"
    if "/" in city or not path.exists():
        known = ", ".join(sorted(p.stem for p in cities_dir.glob("*.yml")))
        raise SpecError(f"no spec for city {city!r} in {cities_dir} (known: {known})")
    spec = load_spec(path)
    if spec.city != city:
        raise SpecError(f"{path}: city: {spec.city!r} does not match the file name {city!r}")
    return spec


def all_cities(cities_dir: Path | None = None) -> list[str]:
    cities_dir = cities_dir or CITIES_DIR
    return sorted(p.stem for p in cities_dir.glob("*.yml"))


def shared_settings(specs: list[CitySpec]) -> list[str]:
    """Settings two cities must never share: a spec copied for a new city and left pointing at the old
    city's database (its environment prefix, its Airflow connection) would load that database as the new city.
    """
    problems = []
    for label, value_of in (
        ("source.env_prefix", lambda s: s.source.env_prefix),
        ("source.conn_id", lambda s: s.source.conn_id),
        ("display_name", lambda s: s.display_name),
    ):
        seen: dict[str, list[str]] = {}
        for spec in specs:
            seen.setdefault(value_of(spec), []).append(spec.city)
        problems += [
            f"{' and '.join(cities)} share {label} {value!r}: each city needs its own"
            for value, cities in seen.items()
            if len(cities) > 1
        ]
    return problems
