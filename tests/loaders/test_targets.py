"""The same merge semantics on DuckDB and PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from tests.rows import contribution_row
from transforms.normalize import unified_schema


def _person(id_number, person_no, name="王镕"):
    return {
        "id_number": id_number,
        "name": name,
        "sex": "2",
        "ethnicity": "01",
        "birth_date": dt.date(1949, 12, 31),
        "work_start_date": None,
        "division_code": "110105",
        "phone": "",
        "address": None,
        "source_city": "harbin",
        "source_person_no": person_no,
    }


def _persons(*rows):
    return pa.Table.from_pylist(list(rows), schema=unified_schema("person"))


def test_schema_carries_national_codes_in_column_comments(target):
    target.ensure_schema()  # idempotent
    if target.url.startswith("duckdb"):
        sql = "SELECT table_name || '.' || column_name, comment FROM duckdb_columns() WHERE schema_name = 'province'"
    else:
        sql = (
            "SELECT c.table_name || '.' || c.column_name, col_description(('province.' || c.table_name)::regclass, "
            "c.ordinal_position) FROM information_schema.columns c WHERE c.table_schema = 'province'"
        )
    comments = dict(target.fetchall(sql))
    assert comments["person.id_number"].startswith("AAC002 ")
    assert comments["contribution.contribution_base"].startswith("AAE180 ")
    assert comments["account.account_id"].startswith("AAZ116 ")
    assert {k.split(".")[0] for k, v in comments.items() if v} == {
        "account",
        "contribution",
        "cutover_log",
        "employer",
        "employer_xref",
        "enrolment",
        "load_batch",
        "person",
        "person_xref",
        "quarantine",
    }


def test_applying_the_same_rows_twice_changes_nothing(target):
    rows = _persons(_person("11010519491231002X", "P1"), _person("230103190001010034", "P2", "李喆"))
    target.begin()
    first = target.apply_persons(rows)
    target.commit()
    second = target.apply_persons(rows)
    content = target.fetchall("SELECT name, phone, address FROM province.person ORDER BY id_number")
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 2)
    assert content == [("王镕", "", None), ("李喆", "", None)]  # empty string and NULL kept apart


def test_a_changed_row_is_updated(target):
    target.apply_persons(_persons(_person("11010519491231002X", "P1")))
    res = target.apply_persons(_persons(_person("11010519491231002X", "P1", "王喆")))
    assert (res.inserted, res.updated, res.unchanged) == (0, 1, 0)
    assert target.fetchall("SELECT name FROM province.person") == [("王喆",)]


def _city(rows, city):
    return [{**r, "source_city": city} for r in rows]


def test_the_same_person_from_two_cities_is_one_person_whatever_the_order(target, tmp_path):
    from jinbao.targets import open_target

    a = _city([_person("11010519491231002X", "H1", "王镕")], "harbin")
    b = _city(
        [_person("11010519491231002X", "Q7", "王熔"), _person("230103190001010034", "Q8", "李喆")], "qiqihar"
    )
    other = open_target(f"duckdb:///{tmp_path / 'other-order.duckdb'}")
    other.ensure_schema()
    for t, order in ((target, (a, b)), (other, (b, a))):
        for rows in order:
            t.apply_persons(_persons(*rows))
    q = "SELECT id_number, name, source_city, source_person_no FROM province.person ORDER BY 1"
    assert (
        target.fetchall(q)
        == other.fetchall(q)
        == [
            (
                "11010519491231002X",
                "王镕",
                "harbin",
                "H1",
            ),  # harbin < qiqihar: harbin's record gives the attributes
            ("230103190001010034", "李喆", "qiqihar", "Q8"),
        ]
    )
    xref = "SELECT source_city, source_person_no, id_number FROM province.person_xref ORDER BY 1, 2"
    assert target.fetchall(xref) == [
        ("harbin", "H1", "11010519491231002X"),
        ("qiqihar", "Q7", "11010519491231002X"),
        ("qiqihar", "Q8", "230103190001010034"),
    ]
    other.close()


def test_an_id_corrected_at_source_moves_the_record(target):
    target.apply_persons(_persons(_person("11010519491231002X", "P1")))
    target.apply_persons(_persons(_person("230103190001010034", "P1")))
    assert target.fetchall("SELECT id_number, source_person_no FROM province.person") == [
        ("230103190001010034", "P1")
    ]


def test_the_same_key_twice_in_one_batch_is_refused(target):
    res = target.apply_persons(
        _persons(_person("11010519491231002X", "P1"), _person("11010519491231002X", "P1", "冒名"))
    )
    assert res.inserted == 1
    assert res.rejected.column("reason").to_pylist() == ["same key twice in one batch"]


def test_money_and_bigints_are_exact(target):
    row = {
        "source_city": "harbin",
        "source_key": str(2**53 + 1),
        "id_number": "11010519491231002X",
        "employer_no": "E1",
        "insurance_type": "110",
        "fee_period": 202401,
        "accounting_period": 202401,
        "payment_type": "1",
        "contribution_base": Decimal("296685.43"),
        "employer_due": Decimal("1234567890123456.78"),
        "employer_to_account": Decimal("0.01"),
        "individual_due": Decimal("0.00"),
        "individual_to_account": Decimal("0.00"),
        "received_flag": "1",
        "received_date": None,
    }
    target.apply("contribution", pa.Table.from_pylist([row], schema=unified_schema("contribution")))
    n, total = target.entity_totals(
        "contribution", "harbin", ["contribution_base", "employer_due", "employer_to_account"]
    )
    stored = target.fetchall("SELECT source_key, employer_due FROM province.contribution")
    assert n == 1
    assert total == Decimal("1234567890123456.78") + Decimal("296685.43") + Decimal("0.01")
    assert stored == [("9007199254740993", Decimal("1234567890123456.78"))]


def test_quarantine_keeps_the_first_batch_and_drops_stale_rows(target):
    from transforms.normalize import QUARANTINE_SCHEMA

    q = pa.Table.from_pylist(
        [
            {
                "source_city": "harbin",
                "entity": "person",
                "source_key": "P7",
                "reason_code": "ID_CHECK_DIGIT",
                "reason_detail": "id check digit",
                "original_values": '{"aac003": "王镕"}',
            }
        ],
        schema=QUARANTINE_SCHEMA,
    )
    target.quarantine(q, "b1")
    assert target.drop_stale_quarantine("harbin", "person") == 0
    target.quarantine(q, "b2")
    assert target.fetchall("SELECT first_batch_id, original_values FROM province.quarantine") == [
        ("b1", '{"aac003": "王镕"}')
    ]
    assert target.drop_stale_quarantine("harbin", "person") == 0
    # a run in which the source no longer produces the row
    assert target.drop_stale_quarantine("harbin", "person") == 1
    assert target.quarantine_count("person", "harbin") == 0


def _payment(key, base="100.00", period=202401, id_number="11010519491231002X"):
    return contribution_row(key, city="daqing", base=base, period=period, id_number=id_number)


def _payments(*rows):
    return pa.Table.from_pylist(list(rows), schema=unified_schema("contribution"))


def test_a_first_load_writes_straight_into_the_table_and_keeps_the_first_of_a_key(target):
    target.begin_entity("contribution", "daqing")
    target.begin()
    res = target.apply(
        "contribution", _payments(_payment("1"), _payment("2", "200.00"), _payment("1", "999.99"))
    )
    target.commit()
    assert (res.inserted, res.updated, res.unchanged) == (2, 0, 0)
    assert res.rejected.column("source_key").to_pylist() == ["1"]
    assert res.rejected.column("contribution_base").to_pylist() == [Decimal("999.99")]
    assert target.fetchall(
        "SELECT source_key, contribution_base, partition_code, fee_period FROM province.contribution ORDER BY 1"
    ) == [("1", Decimal("100.00"), "2", 202401), ("2", Decimal("200.00"), "2", 202401)]


def test_a_first_load_meeting_a_key_from_an_earlier_page_merges_that_page(target):
    target.begin_entity("contribution", "daqing")
    target.begin()
    target.apply("contribution", _payments(_payment("1"), _payment("2")))
    res = target.apply("contribution", _payments(_payment("3"), _payment("2", "250.00")))
    target.commit()
    # nothing of the second page is lost or doubled: one new row, one changed row
    assert (res.inserted, res.updated, res.unchanged) == (1, 1, 0)
    assert target.fetchall("SELECT source_key, contribution_base FROM province.contribution ORDER BY 1") == [
        ("1", Decimal("100.00")),
        ("2", Decimal("250.00")),
        ("3", Decimal("100.00")),
    ]


def test_a_row_whose_period_was_corrected_at_source_moves_and_is_not_doubled(target):
    """The fee period places a contribution (it closes the key): a corrected period moves the row."""
    target.begin_entity("contribution", "daqing")
    target.begin()
    target.apply("contribution", _payments(_payment("1"), _payment("2", period=199912)))
    target.commit()
    target.begin_entity("contribution", "daqing")  # the city has rows now: pages are compared
    target.begin()
    res = target.apply(
        "contribution",
        _payments(_payment("1"), _payment("2", period=202012), _payment("3", period=202101)),
    )
    target.commit()
    assert (res.inserted, res.updated, res.unchanged) == (1, 1, 1)
    assert target.fetchall(
        "SELECT source_key, fee_period, contribution_base FROM province.contribution ORDER BY 1"
    ) == [
        ("1", 202401, Decimal("100.00")),
        ("2", 202012, Decimal("100.00")),
        ("3", 202101, Decimal("100.00")),
    ]


def test_a_page_with_no_rows_left_is_a_no_op(target):
    target.begin_entity("contribution", "daqing")
    res = target.apply("contribution", _payments())
    assert (res.inserted, res.updated, res.unchanged, res.rejected.num_rows) == (0, 0, 0, 0)


def test_a_first_load_places_rows_in_their_persons_partition(target):
    retired = _person("230103190001010034", "P9", "李喆") | {"source_city": "daqing"}
    target.apply_persons(_persons(retired))
    target.execute("UPDATE province.person SET partition_code = '4'")
    target.begin_entity("contribution", "daqing")
    target.apply("contribution", _payments(_payment("7", id_number="230103190001010034"), _payment("8")))
    # the known person's partition; the provisional city partition for a person not (yet) loaded
    assert target.fetchall("SELECT source_key, partition_code FROM province.contribution ORDER BY 1") == [
        ("7", "4"),
        ("8", "2"),
    ]


def _employer(
    city,
    number,
    org_code=None,
    uscc=None,
    name="哈尔滨市龙江机械有限公司",
    employer_type="10",
    division="230102",
):
    """A normalized employer row as the transform gives it (codes in standard form, the id derived)."""
    employer_id = f"{uscc[8:16]}-{uscc[16]}" if uscc else org_code or f"{city}:{number}"
    return {
        "employer_id": employer_id,
        "org_code": org_code,
        "uscc": uscc,
        "name": name,
        "employer_type": employer_type,
        "division_code": division,
        "source_city": city,
        "employer_no": number,
    }


def _employers(*rows):
    return pa.Table.from_pylist(list(rows), schema=unified_schema("employer"))


EMPLOYER_COLS = "employer_id, org_code, uscc, name, employer_type, division_code, source_city, employer_no"


def test_the_same_employer_in_three_cities_is_one_employer_whatever_the_order(target, tmp_path):
    from jinbao.targets import open_target

    # 60003734-1 is GB 11714's example; 91230100600037341Q embeds it (check character by python-stdnum)
    daqing = [
        _employer(
            "daqing", "DQ000001", None, "91230100600037341Q", "哈尔滨市龙江机械有限责任公司", "10", "230602"
        )
    ]
    harbin = [
        _employer("harbin", "E0000007", "60003734-1", None, "哈尔滨市龙江机械有限公司", "10", "230102"),
        _employer("harbin", "E0000009", None, None, "道里区个体修配部", "60", "230102"),
    ]
    qiqihar = [
        _employer("qiqihar", "Q0000003", "60003734-1", None, "哈尔滨市龙江机械有限公司", "20", "230202")
    ]
    other = open_target(f"duckdb:///{tmp_path / 'other-order.duckdb'}")
    other.ensure_schema()
    for t, order in ((target, (harbin, qiqihar, daqing)), (other, (daqing, qiqihar, harbin))):
        for rows in order:
            t.begin()
            t.apply_employers(_employers(*rows))
            t.commit()
    q = f"SELECT {EMPLOYER_COLS} FROM province.employer ORDER BY 1"
    # name, type and division of the first record in (city, number) order: daqing's; the USCC only daqing has;
    # an employer with neither code is its own, under CITY:NUMBER
    assert (
        target.fetchall(q)
        == other.fetchall(q)
        == [
            (
                "60003734-1",
                "60003734-1",
                "91230100600037341Q",
                "哈尔滨市龙江机械有限责任公司",
                "10",
                "230602",
                "daqing",
                "DQ000001",
            ),
            ("harbin:E0000009", None, None, "道里区个体修配部", "60", "230102", "harbin", "E0000009"),
        ]
    )
    assert target.fetchall(
        "SELECT source_city, employer_no, employer_id FROM province.employer_xref ORDER BY 1, 2"
    ) == [
        ("daqing", "DQ000001", "60003734-1"),
        ("harbin", "E0000007", "60003734-1"),
        ("harbin", "E0000009", "harbin:E0000009"),
        ("qiqihar", "Q0000003", "60003734-1"),
    ]
    # the disagreements are reported, never resolved silently: names and types differ for 60003734-1
    assert target.consolidation_findings()["employer_conflicts"] == [("60003734-1", 4 - 1, 2, 2, 1)]
    other.close()


def test_rolling_back_a_city_restores_the_employers_it_shared(target):
    harbin = _employers(_employer("harbin", "E0000007", "60003734-1", None, "哈尔滨市龙江机械有限公司"))
    daqing = _employers(
        _employer("daqing", "DQ000001", None, "91230100600037341Q", "龙江机械（大庆）", "10", "230602"),
        _employer("daqing", "DQ000002", "12345678-8", None, "大庆市石化设备厂"),
    )
    target.apply_employers(harbin)
    q = f"SELECT {EMPLOYER_COLS} FROM province.employer ORDER BY 1"
    alone = target.fetchall(q)
    target.apply_employers(daqing)
    assert target.fetchall(q)[1][2:4] == (
        "91230100600037341Q",
        "龙江机械（大庆）",
    )  # daqing's record leads now
    target.begin()
    removed = target.remove_city("daqing")
    target.commit()
    assert target.fetchall(q) == alone  # harbin's employer exactly as harbin alone gives it
    assert removed["employer_xref"] == 2 and removed["employer"] == 1


def test_the_person_index_keeps_text_exactly(target):
    """Local numbers with leading zeros, empty strings apart from NULL, and quotes and commas come back as stored
    (PostgreSQL's index is read through COPY and Arrow's CSV reader)."""
    target.apply_persons(
        _persons(
            _person("230103190001010034", "000120", "李喆") | {"source_city": "daqing"},
            _person("11010519491231002X", '0,"7"', "张三") | {"source_city": "daqing"},
        )
    )
    index = target.person_index("daqing")
    assert index.schema.types == [pa.string(), pa.string()]
    assert sorted(index.to_pylist(), key=lambda r: r["id_number"]) == [
        {"source_person_no": '0,"7"', "id_number": "11010519491231002X"},
        {"source_person_no": "000120", "id_number": "230103190001010034"},
    ]
    assert target.person_index("harbin").num_rows == 0
    nulls = target.fetch_arrow(target._p("SELECT CAST(NULL AS VARCHAR) AS a, '' AS b, ? AS c"), ['天,"x"'])
    assert nulls.to_pylist() == [{"a": None, "b": "", "c": '天,"x"'}]


@pytest.mark.postgres
def test_a_current_schema_is_not_locked_again_while_another_load_holds_its_tables(pg_url):
    """Two cities starting together: one is loading when the other checks the schema. DDL, even the
    IF NOT EXISTS forms, would wait on the loader's locks (and deadlock when the loader then waits
    on it); a schema already at this version must be left alone."""
    import psycopg

    from jinbao.targets import open_target

    first = open_target(pg_url)
    first.ensure_schema()
    first.close()
    with psycopg.connect(pg_url) as loader:  # a transaction holding every table a COMMENT ON would need
        loader.execute("LOCK TABLE province.person, province.contribution IN SHARE UPDATE EXCLUSIVE MODE")
        second = open_target(pg_url)
        second.execute("SET lock_timeout = '2s'")
        second.ensure_schema()  # LockNotAvailable without the fingerprint check
        second.close()
        loader.rollback()


@pytest.mark.postgres
def test_a_schema_missing_a_table_is_completed(pg_url):
    from jinbao.targets import open_target

    t = open_target(pg_url)
    t.ensure_schema()
    t.execute("DROP TABLE province.quarantine")
    t.execute("COMMENT ON SCHEMA province IS NULL")  # what an older jinbao left
    t.ensure_schema()
    assert t.fetchall("SELECT count(*) FROM province.quarantine") == [(0,)]
    t.close()


def _enrolment(city, id_number, retired="0"):
    row = {
        "source_city": city,
        "id_number": id_number,
        "insurance_type": "110",
        "employer_no": "E1",
        "enrolment_status": "1",
        "payment_status": "1",
        "enrolment_date": dt.date(2001, 7, 1),
        "end_date": None,
        "retired": retired,
    }
    return pa.Table.from_pylist([row], schema=unified_schema("enrolment"))


@pytest.mark.postgres
def test_an_incremental_run_moves_rows_it_placed_before_another_city_moved_their_person(pg_url):
    """Daqing reads a shared person's partition (2) and places a new payment there; before it commits,
    Harbin's load records the person's retirement and moves the person, and every row committed so
    far, to partition 4. Daqing wrote no person or enrolment row, so it routes nobody; its own payment
    must still end up beside its person."""
    from jinbao.targets import open_target

    pid = "230103190001010034"
    daqing, harbin = open_target(pg_url), open_target(pg_url)
    daqing.ensure_schema()
    for t, city, key in ((daqing, "daqing", "1"), (harbin, "harbin", "H1")):
        t.begin_run()
        t.begin()
        t.apply_persons(_persons(_person(pid, key, "李喆") | {"source_city": city}))
        t.consolidate_persons()
        t.begin_entity("enrolment", city)
        t.apply("enrolment", _enrolment(city, pid))
        t.commit()
        t.route_partitions(city)
    assert daqing.fetchall("SELECT partition_code FROM province.person") == [("2",)]

    daqing.begin_run(track_touched=True)
    daqing.begin_entity("contribution", "daqing")
    daqing.begin()
    daqing.apply("contribution", _payments(_payment("7", id_number=pid)))  # placed in 2, not committed
    harbin.begin_run(track_touched=True)
    harbin.begin_entity("enrolment", "harbin")
    harbin.begin()
    harbin.apply("enrolment", _enrolment("harbin", pid, retired="1"))
    harbin.commit()
    assert harbin.route_partitions("harbin", only_touched=True) == 1
    daqing.commit()
    daqing.route_partitions("daqing", only_touched=True)

    assert daqing.fetchall("SELECT partition_code FROM province.person") == [("4",)]
    assert daqing.fetchall("SELECT source_key, partition_code FROM province.contribution") == [("7", "4")]
    assert daqing.fetchall("SELECT DISTINCT partition_code FROM province.enrolment") == [("4",)]
    daqing.close()
    harbin.close()


def test_rows_placed_after_their_person_moved_follow_the_person(target):
    """Placement reads the persons' partitions once per run; routing that moves a person must make the
    next page read them again, or its rows would stay in the partition the person left."""
    pid = "230103190001010034"
    target.begin_run(track_touched=True)
    target.begin()
    target.apply_persons(_persons(_person(pid, "1", "李喆") | {"source_city": "daqing"}))
    target.begin_entity("enrolment", "daqing")
    target.apply("enrolment", _enrolment("daqing", pid))
    target.commit()
    target.route_partitions("daqing")
    target.begin_entity("contribution", "daqing")
    target.begin()
    target.apply("contribution", _payments(_payment("7", id_number=pid)))  # the partitions are read: 2
    target.commit()
    target.begin_entity("enrolment", "daqing")
    target.begin()
    target.apply("enrolment", _enrolment("daqing", pid, retired="1"))
    target.commit()
    assert target.route_partitions("daqing", only_touched=True) == 1
    target.begin_entity("contribution", "daqing")
    target.begin()
    target.apply("contribution", _payments(_payment("8", id_number=pid)))
    target.commit()
    assert target.fetchall("SELECT source_key, partition_code FROM province.contribution ORDER BY 1") == [
        ("7", "4"),
        ("8", "4"),
    ]


@pytest.mark.postgres
def test_a_page_is_compared_by_index_even_where_statistics_favour_a_hash_join(pg_url):
    """Behind a bulk load the table's statistics are stale; a page must still be compared key by key."""
    from jinbao.targets import open_target

    t = open_target(pg_url)
    t.execute("CREATE TABLE big (k bigint PRIMARY KEY, v text)")
    t.execute("INSERT INTO big SELECT g, 'x' FROM generate_series(1, 200000) g")
    t.execute("ANALYZE big")
    t.execute("CREATE TEMP TABLE page AS SELECT g AS k FROM generate_series(1, 100000, 2) g")
    t.execute("ANALYZE page")
    explain = "EXPLAIN SELECT p.k, b.v FROM page p LEFT JOIN big b ON b.k = p.k"
    assert "Hash" in "\n".join(r[0] for r in t.fetchall(explain))  # what the planner prefers
    t.begin()
    plan = "\n".join(r[0] for r in t.execute_by_key(explain).fetchall())
    assert "Nested Loop" in plan and "Index" in plan and "Hash" not in plan
    assert t.fetchall("SHOW enable_hashjoin") == [("on",)]  # only that statement
    t.commit()
    t.close()


def test_a_page_prepared_ahead_loads_as_it_would_unprepared(target):
    target.begin_entity("contribution", "daqing")
    target.begin()
    rows = _payments(_payment("2", "200.00"), _payment("2", "999.99"), _payment("3", "300.00"))
    assert target.prepare("contribution", rows) is None  # the persons' partitions are not read yet
    target.apply("contribution", _payments(_payment("1")))  # ... the first page reads them
    prepared = target.prepare("contribution", rows)
    assert (prepared.rows.num_rows, prepared.rejected.column("source_key").to_pylist()) == (2, ["2"])
    res = target.apply("contribution", rows, prepared)
    assert (res.inserted, res.rejected.num_rows) == (2, 1)
    other = _payments(_payment("4", "400.00"))
    res = target.apply("contribution", other, prepared)  # prepared for other rows: not used
    assert res.inserted == 1
    target.commit()
    assert target.fetchall(
        "SELECT source_key, contribution_base, partition_code FROM province.contribution ORDER BY 1"
    ) == [
        ("1", Decimal("100.00"), "2"),
        ("2", Decimal("200.00"), "2"),
        ("3", Decimal("300.00"), "2"),
        ("4", Decimal("400.00"), "2"),
    ]


def _held(*keys, reason="ID_CHECK_DIGIT"):
    from transforms.normalize import QUARANTINE_SCHEMA

    return pa.Table.from_pylist(
        [
            {
                "source_city": "harbin",
                "entity": "person",
                "source_key": k,
                "reason_code": reason,
                "reason_detail": "id check digit",
                "original_values": f'{{"aac001": "{k}", "aac003": "王镕"}}',
            }
            for k in keys
        ],
        schema=QUARANTINE_SCHEMA,
    )


def test_a_first_run_records_its_quarantine_directly_and_a_later_run_settles_it(target):
    target.begin_run()
    target.begin_entity("person", "harbin")  # nothing of harbin's persons held back yet
    target.begin()
    target.quarantine(_held("P1", "P2"), "b1", page_keys=pa.array(["P1", "P2", "P3"]))
    target.quarantine(_held("P2", "P4"), "b1", page_keys=pa.array(["P2", "P4"]))  # P2 read twice
    target.commit()
    assert target.drop_stale_quarantine("harbin", "person") == 0
    rows = "SELECT source_key, first_batch_id, scope FROM province.quarantine ORDER BY 1"
    assert target.fetchall(rows) == [("P1", "b1", "P"), ("P2", "b1", "P"), ("P4", "b1", "P")]

    target.begin_run()
    target.begin_entity("person", "harbin")  # the next run: P2 fixed at source, P4 no longer there
    target.begin()
    target.quarantine(_held("P1"), "b2", page_keys=pa.array(["P1", "P2"]))
    target.commit()
    assert target.drop_stale_quarantine("harbin", "person") == 1
    assert target.fetchall(rows) == [("P1", "b1", "P")]
