"""The run report auditors read: counts, reconciliation, quarantine by reason. ID numbers masked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2

from jinbao.masking import mask_ids_in_text

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)
_env.filters["mask"] = lambda v: mask_ids_in_text(str(v)) if v is not None else ""


def write_report(run, target, reports_dir: str | Path, *, target_label: str) -> Path:
    """Render the HTML report for one city run; also refresh ``latest-<city>.html``."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    html = _env.get_template("report.html.j2").render(
        run=run,
        target=target_label,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        quarantine=[{"entity": e, "reason": r, "rows": n} for e, r, n in target.quarantine_summary(run.city)],
        findings=target.consolidation_findings(),
        samples=[
            dict(zip(("entity", "reason", "source_key", "detail", "original"), r, strict=True))
            for r in target.quarantine_samples(run.city)
        ],
    )
    path = reports_dir / f"{run.batch_id}.html"
    path.write_text(html, encoding="utf-8")
    (reports_dir / f"latest-{run.city}.html").write_text(html, encoding="utf-8")
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
