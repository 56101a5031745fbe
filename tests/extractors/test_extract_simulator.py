"""Extraction through the real FreeTDS clients against the simulator: exact values, paging, ranges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.compute  # noqa: F401
import pytest

from extractors import extract_entity, extract_parallel
from extractors.parallel import split_ranges
from tests.extractors.conftest import NUMBERS, NUMBERS_ROWS, entity_spec, source_spec

pytestmark = pytest.mark.simulator
DRIVERS = ["pymssql", "pyodbc", "arrow_odbc"]


def _types_entity():
    from fixtures.tds.demo import TYPES_DEMO_COLUMNS

    return entity_spec("types_demo", [(name, legacy) for name, _, legacy in TYPES_DEMO_COLUMNS], ["id"])


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_type_arrives_exact(driver, demo_endpoint, demo_db):
    entity = _types_entity()
    table = pa.Table.from_batches(
        list(extract_entity(source_spec(driver), entity, demo_endpoint, page_rows=4))
    )
    rows = {r["id"]: r for r in table.to_pylist()}
    assert table.schema.field("c_money").type == pa.decimal128(19, 4)
    assert table.schema.field("c_dec").type == pa.decimal128(14, 2)
    assert rows[1]["c_dec"] == Decimal("296685.43")
    assert rows[1]["c_num"] == Decimal("0.1234")
    assert rows[1]["c_money"] == Decimal("12345678901.2345")
    assert rows[2]["c_money"] == Decimal("-922337203685477.5808")
    assert rows[1]["c_bigint"] == 9007199254740993
    assert rows[2]["c_bigint"] == -(2**63)
    assert rows[1]["c_varchar"] == "张三\u3000李四"
    assert rows[1]["c_char"] == "镕喆" + " " * 8  # CHAR(12) is 12 bytes of GBK: 4 for the two characters
    assert rows[1]["c_nvarchar"] == "王五😀"
    assert rows[2]["c_varchar"] == "" and rows[3]["c_varchar"] is None  # empty string and NULL kept apart
    assert rows[1]["c_dt"] == dt.datetime(2023, 5, 6, 7, 8, 9, 123000)
    assert rows[6]["c_dt"] == dt.datetime(1999, 1, 1, 0, 0, 0, 997000)  # .995 is stored as .997 (1/300 s)
    assert rows[1]["c_float"] == 0.1
    with duckdb.connect(str(demo_db), read_only=True) as con:
        want = {
            r[0]: r
            for r in con.execute(
                "SELECT id, c_varchar, c_nvarchar, c_dec, c_bigint FROM dbo.types_demo"
            ).fetchall()
        }
    for i, (_, varchar, nvarchar, dec, big) in want.items():
        assert (rows[i]["c_varchar"], rows[i]["c_nvarchar"], rows[i]["c_dec"], rows[i]["c_bigint"]) == (
            varchar,
            nvarchar,
            dec,
            big,
        )


@pytest.mark.parametrize("driver", DRIVERS)
def test_keyset_pages_deliver_every_row_once(driver, demo_endpoint, demo_db):
    entity = entity_spec("numbers", NUMBERS, ["id"])
    batches = list(extract_entity(source_spec(driver), entity, demo_endpoint, page_rows=7000))
    assert [b.num_rows for b in batches] == [7000, 7000, 7000, 7000, 2000]
    ids = pa.concat_arrays([b.column("id") for b in batches]).to_pylist()
    assert ids == list(range(NUMBERS_ROWS))
    amounts = pa.concat_arrays([b.column("amount") for b in batches])
    with duckdb.connect(str(demo_db), read_only=True) as con:
        want = con.execute("SELECT sum(amount), sum(big) FROM dbo.numbers").fetchone()
    assert pa.compute.sum(amounts).as_py() == want[0]
    assert sum(pa.concat_arrays([b.column("big") for b in batches]).to_pylist()) == want[1]


@pytest.mark.parametrize("driver", DRIVERS)
def test_parallel_key_ranges_cover_the_table_exactly_once(driver, demo_endpoint):
    entity = entity_spec("numbers", NUMBERS, ["id"])
    source = source_spec(driver, max_connections=3, batch_rows=4000)
    ids = sorted(
        i for b in extract_parallel(source, entity, demo_endpoint) for i in b.column("id").to_pylist()
    )
    assert ids == list(range(NUMBERS_ROWS))


def test_split_ranges_are_contiguous_and_half_open():
    ranges = split_ranges(0, 99, 4)
    assert [(r.lower, r.upper) for r in ranges] == [(None, 24), (24, 49), (49, 74), (74, None)]
    assert [(r.lower, r.upper) for r in split_ranges(5, 6, 4)] == [(None, None)]


@pytest.mark.parametrize(
    ("actual", "names", "undecodable"),
    [
        ("gb18030", ["冯\ue01a", "张三", " ", None], [None, None, None, None]),
        # a spec claiming plain GBK for bytes in the user-defined area: held back with the bytes, never '?'
        ("cp936", [None, "张三", " ", None], ["aac003=b7ebaabb", None, None, None]),
    ],
)
def test_ase_cp936_text_arrives_as_its_bytes_and_decodes_exactly_or_is_flagged(actual, names, undecodable):
    """FreeTDS would turn 0xAABB (U+E01A in GBK's user-defined area) into '?'; jinbao reads the bytes instead."""
    from extractors import SourceEndpoint
    from fixtures.tds import TdsServer

    con = duckdb.connect()
    con.execute("CREATE SCHEMA dbo; CREATE SCHEMA sim_catalog")
    con.execute(
        "CREATE TABLE dbo.ac01 AS SELECT * FROM (VALUES ('P1', '冯\ue01a'), ('P2', '张三'), ('P3', ''), "
        "('P4', NULL)) t(aac001, aac003)"
    )
    con.execute(
        "CREATE TABLE sim_catalog.columns AS SELECT * FROM (VALUES ('dbo', 'ac01', 'aac001', 1, 'char(4)'), "
        "('dbo', 'ac01', 'aac003', 2, 'varchar(20)')) t(table_schema, table_name, column_name, ordinal, sql_type)"
    )
    source = source_spec(
        "pymssql", dialect="sybase", tds_version="5.0", charset={"declared": "cp936", "actual": actual}
    )
    entity = entity_spec("ac01", [("aac001", "char(4)"), ("aac003", "varchar(20)")], ["aac001"])
    with TdsServer(connection=con, dialect="sybase", server_charset="cp936", ase_version="15.0.3") as server:
        endpoint = SourceEndpoint("127.0.0.1", server.port, "sa", "x", "demo")
        batches = list(extract_entity(source, entity, endpoint, page_rows=2))
    assert len(batches) == 2

    def column(name: str) -> list:
        return [
            v
            for b in batches
            for v in (b.column(name).to_pylist() if name in b.column_names else [None] * len(b))
        ]

    assert column("aac001") == ["P1  ", "P2  ", "P3  ", "P4  "]  # CHAR(4): padded; paged by the trimmed key
    assert column("aac003") == names  # ASE returns one space for an empty string
    assert column("__undecodable__") == undecodable
