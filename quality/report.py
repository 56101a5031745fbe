"""The run report auditors read: counts, reconciliation, quarantine by reason. ID numbers masked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2

from jinbao.masking import mask_ids_in_text, redact_original

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)
_env.filters["mask"] = lambda v: mask_ids_in_text(str(v)) if v is not None else ""


def _personal_columns() -> tuple[set[str], dict[str, str]]:
    """Source columns (of every city spec) that feed personal unified columns, and what they feed."""
    from jinbao.masking import PERSONAL
    from jinbao.spec import all_cities, city_spec

    personal, meaning = set(), {}
    for city in all_cities():
        for entity in city_spec(city).entities.values():
            for src, col in entity.all_columns.items():
                if col.to in PERSONAL:
                    personal.add(src)
                    meaning[src] = col.to
    return personal, meaning


def write_report(
    run, target, reports_dir: str | Path, *, target_label: str, step: dict | None = None
) -> Path:
    """Render the HTML report for one city run; also refresh ``latest-<city>.html``.

    ``step``: the cutover step that loaded (name, partition, and why it was resumed or forced, if so). A
    rehearsal's report refreshes ``latest-<city>-rehearsal.html`` instead: it loaded the test partition.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    personal = _personal_columns()
    html = _env.get_template("report.html.j2").render(
        run=run,
        step=step,
        target=target_label,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        quarantine=[{"entity": e, "reason": r, "rows": n} for e, r, n in target.quarantine_summary(run.city)],
        findings=target.consolidation_findings(),
        finding_counts=target.consolidation_counts(),
        samples=[
            {
                **dict(zip(("entity", "reason", "source_key", "detail", "original"), r, strict=True)),
                "original": redact_original(r[4], *personal),
            }
            for r in target.quarantine_samples(run.city)
        ],
    )
    path = reports_dir / f"{run.batch_id}.html"
    path.write_text(html, encoding="utf-8")
    latest = (
        f"latest-{run.city}-rehearsal.html"
        if step and step["name"] == "rehearse"
        else f"latest-{run.city}.html"
    )
    (reports_dir / latest).write_text(html, encoding="utf-8")
    return path


def write_step_report(result, target, reports_dir: str | Path) -> Path:
    """Report of a cutover step that did not load (verify, rollback)."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    html = _env.get_template("cutover_step.html.j2").render(
        result=result, target=target.url, generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )
    path = reports_dir / f"cutover-{result.city}-{result.step}-{stamp}.html"
    path.write_text(html, encoding="utf-8")
    return path
