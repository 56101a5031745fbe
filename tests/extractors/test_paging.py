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
        "WHERE (([aac001] > ?) OR ([aac001] = ? AND [aae140] > ?)) ORDER BY [aac001], [aae140]"
    )


def test_ase_pages_with_set_rowcount_because_12_5_has_no_top():
    source = HARBIN.source.model_copy(update={"dialect": "sybase", "tds_version": "5.0"})
    sql = page_query(HARBIN.entities["person"], source, 300, first_page=False, since="aac007")
    assert sql.startswith("SET ROWCOUNT 300 SELECT [aac001]")
    assert "TOP" not in sql
    assert sql.endswith("WHERE (([aac001] > %s)) AND [aac007] >= %s ORDER BY [aac001] SET ROWCOUNT 0")


def test_a_key_range_bounds_the_last_page_from_above():
    sql = page_query(HARBIN.entities["contribution"], HARBIN.source, 10, first_page=False, upper_bound=True)
    assert "WHERE (([aaz223] > %s)) AND [aaz223] <= %s ORDER BY [aaz223]" in sql
