import pytest

from extractors.exceptions import ExtractError
from extractors.stream import page_query, text_as_bytes
from jinbao.spec import EntitySpec, city_spec

DAQING = city_spec("daqing")  # SQL Server
HARBIN = city_spec("harbin")  # Sybase ASE 15, cp936


def test_first_page_has_no_offset_and_orders_by_key():
    sql = page_query(DAQING.entities["contribution"], DAQING.source, 500, first_page=True)
    assert sql.startswith("SELECT TOP 500 [PAY_ID], [PERSON_ID]")
    assert sql.endswith("FROM [dbo].[T_PAYMENT] ORDER BY [PAY_ID]")
    assert "OFFSET" not in sql.upper()


def test_composite_key_pages_compare_the_key_tuple_with_parameters():
    enrolment = DAQING.entities["enrolment"]
    sql = page_query(enrolment, DAQING.source.model_copy(update={"driver": "pyodbc"}), 100, first_page=False)
    assert sql.endswith(
        "WHERE (([PERSON_ID] > ?) OR ([PERSON_ID] = ? AND [INSURE_TYPE] > ?)) ORDER BY [PERSON_ID], [INSURE_TYPE]"
    )


def test_ase_pages_with_set_rowcount_because_12_5_has_no_top():
    sql = page_query(HARBIN.entities["person"], HARBIN.source, 300, first_page=False, since="aac007")
    assert sql.startswith("SET ROWCOUNT 300 SELECT CONVERT(VARBINARY(12), [aac001]) AS [aac001]")
    assert "TOP" not in sql
    assert sql.endswith("WHERE (([aac001] > %s)) AND [aac007] >= %s ORDER BY [aac001] SET ROWCOUNT 0")


def test_a_key_range_bounds_the_last_page_from_above():
    pymssql = DAQING.source.model_copy(update={"driver": "pymssql"})
    sql = page_query(DAQING.entities["contribution"], pymssql, 10, first_page=False, upper_bound=True)
    assert "WHERE (([PAY_ID] > %s)) AND [PAY_ID] <= %s ORDER BY [PAY_ID]" in sql
    # arrow-odbc binds every parameter as text: the bounds are cast back to the key's type
    sql = page_query(DAQING.entities["contribution"], DAQING.source, 10, first_page=False, upper_bound=True)
    assert DAQING.source.driver == "arrow_odbc"
    assert "WHERE (([PAY_ID] > CAST(? AS BIGINT))) AND [PAY_ID] <= CAST(? AS BIGINT) ORDER BY [PAY_ID]" in sql


def test_cp936_ase_text_is_selected_as_the_bytes_the_server_holds():
    """FreeTDS converts an ASE's cp936 with glibc's GBK, which has no user-defined area: harbin's text travels as
    bytes, each CHAR/VARCHAR at its full byte width; numbers and datetimes, WHERE and ORDER BY are untouched."""
    assert text_as_bytes(HARBIN.source)
    assert not text_as_bytes(DAQING.source)  # SQL Server: FreeTDS reads Chinese_PRC as GB18030
    assert not text_as_bytes(
        city_spec("mudanjiang").source
    )  # cp850 is repaired after a reversible conversion
    sql = page_query(HARBIN.entities["contribution"], HARBIN.source, 50, first_page=False)
    assert sql.startswith(
        "SET ROWCOUNT 50 SELECT [aaz223], CONVERT(VARBINARY(12), [aac001]) AS [aac001], "
        "CONVERT(VARBINARY(10), [aab001]) AS [aab001], CONVERT(VARBINARY(3), [aae140]) AS [aae140], [aae002], "
    )
    assert (
        "[aae180], [aae020]" in sql
        and "CONVERT(VARBINARY(1), [aae078]) AS [aae078], [aae079], [aae036]" in sql
    )
    assert sql.endswith("FROM [dbo].[ac43] WHERE (([aaz223] > %s)) ORDER BY [aaz223] SET ROWCOUNT 0")
    person = page_query(HARBIN.entities["person"], HARBIN.source, 50, first_page=True)
    assert "CONVERT(VARBINARY(20), [aac003]) AS [aac003]" in person
    assert "CONVERT(VARBINARY(100), [aae006]) AS [aae006]" in person


def test_text_columns_without_a_length_cannot_be_fetched_as_bytes():
    entity = EntitySpec.model_validate(
        {
            "table": "dbo.t",
            "key": ["id"],
            "columns": {"id": {"type": "int"}, "memo": {"type": "text", "to": "name"}},
        }
    )
    with pytest.raises(ExtractError, match="memo"):
        page_query(entity, HARBIN.source, 10, first_page=True)
