"""What the Airflow tasks call: plain functions, importable without Airflow at module level."""

from __future__ import annotations

from pathlib import Path

from jinbao.targets import DEFAULT_TARGET


def target_url_from_airflow(conn_id: str | None) -> str:
    """The provincial target from an Airflow connection: extra ``url`` wins, else a postgres URI."""
    if not conn_id:
        return DEFAULT_TARGET
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    url = (conn.extra_dejson or {}).get("url")
    if url:
        return url
    return conn.get_uri()


def load_city_with_airflow_connections(
    city: str,
    target_conn_id: str | None,
    reports_dir: str = "reports",
    mode: str = "incremental",
    force: bool = False,
) -> dict:
    """Load of one city: source endpoint from the spec's conn id, target from ``target_conn_id``.

    A city whose cutover is not executed (never, rolled back, interrupted) is skipped, with the reason,
    unless ``force``: the nightly load keeps cut-over cities current, it never cuts a city over.
    """
    from extractors import endpoint_from_airflow
    from jinbao.cutover import city_held, load_refusal
    from jinbao.runner import run_city
    from jinbao.spec import city_spec
    from jinbao.targets import open_target
    from quality.report import write_report

    spec = city_spec(city)
    url = target_url_from_airflow(target_conn_id)
    with open_target(url) as target:
        target.ensure_schema()
        with city_held(target, spec.city):  # never beside a cutover step (a rollback) of the city
            why_not = load_refusal(target, spec.city)
            if why_not and not force:
                return {"city": city, "skipped": why_not, "reconciled": True, "entities": {}}
            endpoint = endpoint_from_airflow(spec.source.conn_id, spec.source.database)
            run = run_city(spec, endpoint, target, mode=mode)
            report = write_report(run, target, Path(reports_dir), target_label=target.url)
    return {
        "city": city,
        "batch_id": run.batch_id,
        "reconciled": run.reconciled,
        "report": str(report),
        "entities": {
            name: {
                "extracted": e.extracted_rows,
                "loaded": e.loaded_rows,
                "quarantined": e.quarantined_rows,
                "reconciled": e.reconciled,
            }
            for name, e in run.entities.items()
        },
    }
