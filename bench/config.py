"""Bench settings: scales, methods, limits. Everything a run depends on is named here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
CACHE_DIR = ROOT / ".jinbao" / "bench"  # generated cities, reused while the generator is unchanged
CITY = os.environ.get("JINBAO_BENCH_CITY", "daqing")  # a SQL Server city: every method can read it
ENTITY = "contribution"  # the table every method moves (daqing: dbo.T_PAYMENT)
SEED = 20261203
PG_ADMIN_URL = os.environ.get("JINBAO_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SOURCE_USER, SOURCE_PASSWORD = "bench", "bench"  # the simulator accepts any login


@dataclass(frozen=True)
class Scale:
    name: str
    persons: int  # about 25 contribution rows per person


SCALES = {
    "small": Scale("small", 4_000),  # ~100k contribution rows: a quick look
    "1m": Scale("1m", 40_000),
    "5m": Scale("5m", 200_000),
}
SCALE_SETS = {"full": ["1m", "5m"], "small": ["small"], "1m": ["1m"], "5m": ["5m"]}

# Order matters: fast and essential first, so a run short of time still has the headline figures.
METHODS = ["raw_floor", "jinbao", "dlt_fastest", "dlt_default", "naive_pandas"]
LABELS = {
    "jinbao": "jinbao (full city load; contribution entity)",
    "jinbao_city": "jinbao, whole city (5 entities)",
    "naive_pandas": "naive pandas (read_sql + to_sql)",
    "dlt_default": "dlt sql_database, default (pyarrow backend, csv + COPY)",
    "dlt_fastest": "dlt sql_database, fastest (pyarrow backend, parquet + ADBC)",
    "raw_floor": "raw floor (freebcp queryout + COPY)",
}

WORKER_TIMEOUT_S = 600  # never run one method longer than this: kill it and extrapolate
# a jinbao run still going then is stopped; its rate so far is reported as partial
JINBAO_LIMIT_S = int(os.environ.get("JINBAO_BENCH_JINBAO_LIMIT_S", 420))
PROFILE_LIMIT_S = int(
    os.environ.get("JINBAO_BENCH_PROFILE_LIMIT_S", 150)
)  # the profiled run samples at most this
BUDGET_S = 27 * 60  # the whole bench; slow baselines at the larger scale are extrapolated past it
PANDAS_MAX_PROJECTED_S = 300  # run pandas at a scale only when its projected time is this or less
PANDAS_MAX_PROJECTED_MB = 8_000  # ... and its projected peak memory (it holds the whole table) this or less
INCREMENTAL_CHANGE_SHARE = 0.001  # 0.1 % of the contribution rows changed between the two runs
SAMPLE_EVERY_S = 0.1  # RSS / CPU sampling period of the method's process tree
TEXT_SAMPLES = 24  # persons whose names are compared character for character

# dlt's fastest configuration, chosen by trying chunk sizes and file formats on this machine (RESULTS.md)
DLT_FASTEST = {"loader_file_format": "parquet", "chunk_size": 200_000}
