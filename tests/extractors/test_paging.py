from extractors.stream import page_query
from jinbao.spec import city_spec

HARBIN = city_spec("harbin")


def test_first_page_has_no_offset_and_orders_by_key():
    sql = page_query(HARBIN.entities["contribution"], HARBIN.source, 500, first_page=True)
    assert sql.startswith("SELECT TOP 500 [aaz223], [aac001]")
    assert sql.endswith("FROM [dbo].[ac43] ORDER BY [aaz223]")
    assert "OFFSET" not in sql.upper()


def test_composite_key_pages_compare_the_key_tuple_with_parameters():
    enrolment = HARBIN.entities["enrolment"]
    sql = page_query(enrolment, HARBIN.source.model_copy(update={"driver": "pyodbc"}), 100, first_page=False)
    assert sql.endswith(
        "WHERE ([aac001] > ?) OR ([aac001] = ? AND [aae140] > ?) ORDER BY [aac001], [aae140]"
    )
