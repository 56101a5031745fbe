import pytest

from extractors.charset import needs_repair, repair_values
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
        {"table": "dbo.t", "key": ["id"], "columns": {"id": {"type": "int"}, "xm": {"type": "varchar(20)", "to": "name"}}}
    )
    rows = [(1, "张三".encode("gbk").decode("cp850")), (2, b"\xd5\xc5\x81\x20".decode("cp850"))]
    batch = rows_to_batch(rows, entity, Charset(declared="cp850", actual="gb18030"))
    assert batch.column("xm").to_pylist() == ["张三", None]
    assert batch.column("__undecodable__").to_pylist() == [None, "xm=d5c58120"]
