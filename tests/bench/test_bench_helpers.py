"""The bench's own helpers: ratios, result shape, correctness comparisons, profile folding, stage clock.

The bench itself (make bench) is not run here: it takes minutes and a PostgreSQL server.
"""

from __future__ import annotations

import json
import time

import pytest

from bench.checks import compare_text
from bench.profile import fold
from bench.report import ratios, write_json, write_markdown
from bench.source import pick_text_samples
from bench.worker import StageClock, pg_type

pytestmark = pytest.mark.slow


def _method(rate: int, **kw) -> dict:
    return {
        "ok": True,
        "rows": 1_000_000,
        "rows_per_s": rate,
        "seconds": 1e6 / rate,
        "peak_rss_mb": 100.0,
        "stages": {},
        "server_cpu_s_per_mrows": 1.0,
        **kw,
    }


def test_ratios_are_jinbao_rate_over_each_alternative_with_dlt_meaning_its_fastest_configuration():
    methods = {
        "jinbao": _method(100_000),
        "naive_pandas": _method(20_000),
        "dlt_fastest": _method(50_000),
        "dlt_default": _method(25_000),
        "raw_floor": _method(400_000),
    }
    assert ratios(methods) == {
        "ratio_vs_naive_pandas": 5.0,
        "ratio_vs_dlt": 2.0,
        "ratio_vs_dlt_default": 4.0,
        "ratio_vs_raw_floor": 0.25,
    }


def test_no_ratio_against_a_method_that_failed():
    methods = {"jinbao": _method(100_000), "raw_floor": {"ok": False, "error": "freebcp failed"}}
    assert ratios(methods) == {}


def _doc(tmp_path) -> dict:
    jinbao = _method(
        100_000,
        city={
            "rows": 1_200_000,
            "seconds": 15.0,
            "rows_per_s": 80_000,
            "server_cpu_s": 3.0,
            "cpu_s": {},
            "entities": {},
        },
        worker={
            "wall_s": 20.0,
            "client_cpu_s": 25.0,
            "server_cpu_s": 3.0,
            "postgres_cpu_s": 5.0,
            "other_cpu_s": 0.0,
            "peak_rss_by_process_mb": {"python -m bench.worker": 300.0},
        },
    )
    methods = {"jinbao": jinbao, "naive_pandas": _method(20_000, extrapolated=True)}
    jinbao.update(ratios(methods))
    source = {"rows": 1_000_000, "table": "dbo.ac43", "money_total": "1.00"}
    return {
        "generated_at": "2026-12-03T00:00:00+00:00",
        "command": "make bench",
        "city": "harbin",
        "entity": "contribution",
        "table": "dbo.ac43",
        "jinbao_driver": "pymssql",
        "dlt_fastest_config": {},
        "elapsed_s": 60.0,
        "machine": {
            "cpu": "x",
            "cores": 2,
            "memory_gb": 24,
            "os": "Debian",
            "kernel": "6",
            "python": "3.11",
            "postgresql": "15",
            "freetds": "1.3",
            "packages": {},
            "git_commit": "abc",
            "git_dirty": False,
            "load_average_at_start": [0.1, 0.1, 0.1],
        },
        "scales": {"1m": {"persons": 40_000, "source": source, "methods": methods}},
    }


def test_results_json_has_rows_per_s_and_peak_rss_per_method_and_jinbao_ratios_per_scale(tmp_path):
    path = tmp_path / "results.json"
    write_json(_doc(tmp_path), path)
    data = json.loads(path.read_text())
    for scale in data["scales"].values():
        for m in scale["methods"].values():
            assert isinstance(m["rows_per_s"], int | float)
            assert isinstance(m["peak_rss_mb"], int | float)
        assert scale["methods"]["jinbao"]["ratio_vs_naive_pandas"] == 5.0


def test_results_markdown_names_the_command_and_marks_extrapolated_figures(tmp_path):
    path = tmp_path / "RESULTS.md"
    write_markdown(_doc(tmp_path), path)
    text = path.read_text()
    assert "`make bench`" in text
    assert "*(extrapolated)*" in text
    assert "| ratio_vs_naive_pandas | 5.00 | ≥ 7.0 | not met |" in text


def test_a_copy_may_pad_char_names_with_blanks_but_not_change_a_character():
    samples = [
        {"person_no": "2301001", "source_name": "王喆", "truth_name": "王喆"},
        {"person_no": "2301002", "source_name": "李\u3000明", "truth_name": "李明"},
    ]
    ok = compare_text(samples, {"2301001": "王喆      ", "2301002": "李\u3000明  "}, "source_name")
    assert ok["ok"] and ok["mismatch_count"] == 0
    bad = compare_text(samples, {"2301001": "王?      ", "2301002": "李\u3000明"}, "source_name")
    assert not bad["ok"] and bad["mismatches"] == [
        {"person_no": "2301001", "expected": "王喆", "found": "王?      "}
    ]


def test_a_name_missing_from_the_target_is_a_text_failure():
    samples = [{"person_no": "2301001", "source_name": "王喆", "truth_name": "王喆"}]
    assert not compare_text(samples, {}, "truth_name")["ok"]


def test_text_samples_take_gbk_only_and_private_use_names_first():
    rows = [
        (f"{i:07d}", name, name)
        for i, name in enumerate(["张三", "李四", "王喆", "赵\ue000", "钱五", "孙六"])
    ]
    picked = [s["source_name"] for s in pick_text_samples(rows, n=4)]
    assert picked[:2] == ["王喆", "赵\ue000"]
    assert len(picked) == 4


def test_profile_folds_samples_into_stages_threads_and_functions():
    raw = "\n".join(
        [
            'process 1:"python -m bench.worker";thread (1): MainThread;run_city (jinbao/runner.py:250);'
            "apply (loaders/target.py:120);execute (psycopg/connection.py:10) 30",
            'process 1:"python -m bench.worker";thread (2): extract-dbo.ac43-0;work (extractors/parallel.py:80);'
            "fetchall (pymssql/_pymssql.so) 50",
            'process 1:"x";process 9:"python -c spawn_main";thread (9): MainThread;check (quality/checks.py:70) 15',
            'process 1:"x";thread (1): MainThread;normalize_batch (transforms/normalize.py:300) 5',
            'process 1:"x";thread (1): MainThread;apply (loaders/target.py:120);poll (libc.so.6) 40',
        ]
    )
    p = fold(raw)
    assert p["samples"] == 100  # the waiting sample is not CPU
    assert p["runner_wall"]["by_stage"] == {"load (waiting)": 40, "load": 30, "transform": 5}
    assert p["by_stage"] == {"extract": 50, "load": 30, "validate": 15, "transform": 5}
    assert p["by_thread"]["main process: extract threads"] == 50
    assert p["by_thread"]["validation child process"] == 15
    assert p["top_self"][0] == ("fetchall (pymssql/_pymssql.so)", 50)


def test_stage_clock_counts_a_nested_timed_call_once():
    clock = StageClock()
    clock.entity = "contribution"
    inner = clock.timed("load", lambda: time.sleep(0.02))
    outer = clock.timed("load", lambda: (time.sleep(0.02), inner()))
    outer()
    assert 0.035 < clock.totals["contribution"]["load"] < 0.2


def test_stage_clock_counts_waiting_for_each_page_as_extract():
    clock = StageClock()
    clock.entity = "contribution"

    def pages():
        for i in range(3):
            time.sleep(0.01)
            yield i

    assert list(clock.timed_iter("extract", pages)()) == [0, 1, 2]
    assert clock.totals["contribution"]["extract"] >= 0.03


@pytest.mark.parametrize(
    ("legacy", "postgres"),
    [
        ("bigint", "bigint"),
        ("decimal(14,2)", "numeric(14,2)"),
        ("money", "numeric(19,4)"),
        ("char(12)", "text"),
        ("datetime", "timestamp(3)"),
    ],
)
def test_raw_floor_tables_keep_the_legacy_types_exact(legacy, postgres):
    assert pg_type(legacy) == postgres
