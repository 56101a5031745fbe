"""Long text, microseconds, dropped connections and deadlocks, against the simulator's fault injection."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from extractors import extract_entity, extract_parallel
from tests.extractors.conftest import NUMBERS, NUMBERS_ROWS, entity_spec, source_spec

pytestmark = pytest.mark.simulator
DRIVERS = ["pymssql", "pyodbc", "arrow_odbc"]


@pytest.mark.parametrize("driver", ["pymssql", "pyodbc"])
def test_long_text_arrives_whole_and_datetime2_keeps_microseconds(driver, demo_endpoint):
    from fixtures.tds.demo import LONG_TEXT

    entity = entity_spec(
        "types_new",
        [
            ("id", "int"),
            ("c_dt2", "datetime2(6)"),
            ("c_text", "text"),
            ("c_vmax", "varchar(max)"),
            ("c_date", "date"),
        ],
        ["id"],
    )
    rows = {
        r["id"]: r
        for r in pa.Table.from_batches(
            list(extract_entity(source_spec(driver, tds_version="7.4"), entity, demo_endpoint))
        ).to_pylist()
    }
    assert rows[1]["c_dt2"] == dt.datetime(2023, 5, 6, 7, 8, 9, 123456)
    assert rows[2]["c_dt2"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert rows[1]["c_vmax"] == LONG_TEXT  # 10,002 bytes: past VARCHAR(8000) and the 4,096-byte text size
    assert rows[1]["c_text"] == "镕喆\u3000" * 100
    assert rows[1]["c_date"] == dt.date(2023, 5, 6)
    assert rows[3]["c_vmax"] is None and rows[2]["c_vmax"] == ""


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_dropped_connection_resumes_after_the_last_key_with_nothing_lost_or_doubled(
    driver, demo_server, demo_endpoint
):
    from fixtures.tds.faults import Faults

    entity = entity_spec("numbers", NUMBERS, ["id"])
    source = source_spec(driver, retry_backoff_seconds=0.01, batch_rows=5000)
    demo_server.faults = Faults(drop_after_rows=3_210, drop_times=2, match="numbers")
    try:
        ids = [i for b in extract_entity(source, entity, demo_endpoint) for i in b.column("id").to_pylist()]
    finally:
        events, demo_server.faults = list(demo_server.fault_events), None
    assert sum("drop" in e for e in events) == 2
    assert ids == list(range(NUMBERS_ROWS))


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_deadlock_victim_is_retried(driver, demo_server, demo_endpoint):
    from fixtures.tds.faults import Faults

    entity = entity_spec("numbers", NUMBERS, ["id"])
    source = source_spec(driver, retry_backoff_seconds=0.01, max_connections=2, batch_rows=4000)
    demo_server.faults = Faults(deadlock_on_query="numbers", deadlock_times=2)
    try:
        ids = sorted(
            i for b in extract_parallel(source, entity, demo_endpoint) for i in b.column("id").to_pylist()
        )
    finally:
        events, demo_server.faults = list(demo_server.fault_events), None
    assert sum("deadlock" in e for e in events) == 2
    assert ids == list(range(NUMBERS_ROWS))


def test_retries_give_up_with_a_clear_error(demo_server, demo_endpoint):
    from extractors import ExtractError
    from fixtures.tds.faults import Faults

    entity = entity_spec("numbers", NUMBERS, ["id"])
    demo_server.faults = Faults(deadlock_on_query="numbers", deadlock_times=10)
    try:
        with pytest.raises(ExtractError, match="(?i)deadlock"):
            list(
                extract_entity(
                    source_spec("pymssql", retries=2, retry_backoff_seconds=0.01), entity, demo_endpoint
                )
            )
    finally:
        demo_server.faults = None
