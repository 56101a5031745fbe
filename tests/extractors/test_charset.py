import pytest

from extractors.charset import decode_values, fetch_as_bytes, needs_repair, repair_values
from extractors.exceptions import ExtractError
from extractors.stream import rows_to_batch
from jinbao.spec import Charset, EntitySpec


def test_latin1_mojibake_is_repaired_to_the_gbk_text():
    mojibake = "张三".encode("gbk").decode("latin-1")
    assert mojibake == "ÕÅÈý"
    assert repair_values([mojibake, None], "iso_1", "gb18030") == (["张三", None], [None, None])


def test_cp850_repair_keeps_four_byte_and_private_use_characters():
    names = ["王镕", "吉𠮷", "李\ue000", "䶮"]
    seen_by_client = [n.encode("gb18030").decode("cp850") for n in names]
    repaired, bad = repair_values(seen_by_client, "cp850", "gb18030")
    assert repaired == names
    assert bad == [None] * 4


def test_undecodable_bytes_are_kept_in_hex_never_replaced():
    raw = b"\xd5\xc5\x81\x20"  # 张 then a byte pair GB18030 does not define
    repaired, bad = repair_values([raw.decode("latin-1")], "iso_1", "gb18030")
    assert repaired == [None]
    assert bad == ["d5c58120"]


def test_chinese_family_needs_no_repair_and_lossy_declared_charsets_are_refused():
    assert not needs_repair("cp936", "gb18030")
    assert needs_repair("cp850", "gb18030")
    with pytest.raises(ExtractError, match="cannot be repaired"):
        needs_repair("cp1252", "gb18030")


def test_rows_with_undecodable_text_carry_their_bytes_to_the_transform():
    entity = EntitySpec.model_validate(
        {
            "table": "dbo.t",
            "key": ["id"],
            "columns": {"id": {"type": "int"}, "xm": {"type": "varchar(20)", "to": "name"}},
        }
    )
    rows = [(1, "张三".encode("gbk").decode("cp850")), (2, b"\xd5\xc5\x81\x20".decode("cp850"))]
    batch = rows_to_batch(rows, entity, Charset(declared="cp850", actual="gb18030"))
    assert batch.column("xm").to_pylist() == ["张三", None]
    assert batch.column("__undecodable__").to_pylist() == [None, "xm=d5c58120"]


def test_ase_text_is_fetched_as_bytes_unless_its_declared_charset_converts_reversibly():
    assert fetch_as_bytes("sybase", "cp936")  # glibc's GBK in FreeTDS: no user-defined area, '?' instead
    assert fetch_as_bytes("sybase", "utf8")
    assert fetch_as_bytes("sybase", "gb18030")  # a name FreeTDS does not know: bytes unconverted
    assert not fetch_as_bytes("sybase", "cp850")  # total single-byte map: repaired after the conversion
    assert not fetch_as_bytes("sybase", "iso_1")
    assert not fetch_as_bytes("mssql", "cp936")  # SQL Server: FreeTDS reads Chinese_PRC as GB18030


def test_bytes_decode_exactly_or_are_kept_in_hex():
    pua = "冯\ue01a"  # a Harbin private-use name character: 0xAABB in GBK's user-defined area
    raw = [pua.encode("gb18030"), b"\xd5\xc5\x81\x20", None, b" "]
    assert decode_values(raw, "gb18030") == ([pua, None, None, " "], [None, "d5c58120", None, None])
    assert decode_values([pua.encode("gb18030")], "cp936") == (
        [None],
        ["b7ebaabb"],
    )  # plain GBK lacks the area


def test_rows_fetched_as_bytes_decode_text_columns_only_and_flag_undecodable_ones():
    entity = EntitySpec.model_validate(
        {"table": "dbo.t", "key": ["id"],
         "columns": {"id": {"type": "bigint"}, "xm": {"type": "char(6)", "to": "name"},
                     "dz": {"type": "varchar(20)", "to": "address"}}}
    )  # fmt: skip
    rows = [(2**53 + 1, "王\ue01b".encode("gb18030") + b"  ", b"\xb9\xfe"), (2, b"\xd5\xc5\x81\x20  ", None)]
    batch = rows_to_batch(rows, entity, Charset(declared="cp936", actual="gb18030"), as_bytes=True)
    assert batch.column("id").to_pylist() == [2**53 + 1, 2]
    assert batch.column("xm").to_pylist() == ["王\ue01b  ", None]
    assert batch.column("dz").to_pylist() == ["哈", None]
    assert batch.column("__undecodable__").to_pylist() == [None, "xm=d5c581202020"]
