"""Nightly load of every city in cities/, one mapped task per city.

Thin on purpose: the scheduler parses this file often, so it imports only the
Airflow SDK; the work happens in jinbao.orchestration.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    dag_id="jinbao_nightly_load",
    schedule="0 1 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    tags=["jinbao"],
    params={
        "target_conn_id": Param(
            "jinbao_province",
            type=["string", "null"],
            description="Airflow connection of the provincial database",
        ),
        "reports_dir": Param("reports", type="string"),
        "mode": Param(
            "incremental", enum=["incremental", "full"], description="incremental uses per-table watermarks"
        ),
        "cities": Param([], type="array", description="limit to these cities (empty: every spec in cities/)"),
        "force": Param(False, type="boolean", description="also load cities whose cutover is not executed"),
    },
)
def jinbao_nightly_load():
    @task
    def list_cities(params=None) -> list[str]:
        from jinbao.spec import all_cities

        wanted = params.get("cities") or []
        cities = all_cities()
        return [c for c in cities if c in wanted] if wanted else cities

    @task(max_active_tis_per_dagrun=2)
    def load_city(city: str, params=None) -> dict:
        from jinbao.orchestration import load_city_with_airflow_connections

        return load_city_with_airflow_connections(
            city,
            params.get("target_conn_id"),
            params.get("reports_dir"),
            params.get("mode"),
            bool(params.get("force")),
        )

    @task
    def check_reconciled(results: list[dict]) -> None:
        for r in results:
            if r.get("skipped"):
                print(f"skipped {r['city']}: {r['skipped']}")
        bad = [r["city"] for r in results if not r["reconciled"]]
        if bad:
            raise ValueError(f"not reconciled: {', '.join(bad)}; see the reports")

    check_reconciled(load_city.expand(city=list_cities()))


nightly_load_dag = jinbao_nightly_load()
