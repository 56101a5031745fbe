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


def quarantine_summary(con, city: str) -> list[dict]:
    rows = con.execute(
        "SELECT entity, reason_code, count(*) FROM province.quarantine WHERE source_city = ? GROUP BY ALL ORDER BY 1, 2",
        [city],
    ).fetchall()
    return [{"entity": e, "reason": r, "rows": n} for e, r, n in rows]


def quarantine_samples(con, city: str, per_reason: int = 5) -> list[dict]:
    rows = con.execute(
        "SELECT entity, reason_code, source_key, reason_detail, original_values FROM ("
        " SELECT *, row_number() OVER (PARTITION BY entity, reason_code ORDER BY source_key) AS rn"
        " FROM province.quarantine WHERE source_city = ?) WHERE rn <= ? ORDER BY 1, 2, 3",
        [city, per_reason],
    ).fetchall()
    return [dict(zip(("entity", "reason", "source_key", "detail", "original"), r, strict=True)) for r in rows]


def write_report(run, con, reports_dir: str | Path, *, target_label: str) -> Path:
    """Render the HTML report for one city run; also refresh ``latest-<city>.html``."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    html = _env.get_template("report.html.j2").render(
        run=run,
        target=target_label,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        quarantine=quarantine_summary(con, run.city),
        samples=quarantine_samples(con, run.city),
    )
    path = reports_dir / f"{run.batch_id}.html"
    path.write_text(html, encoding="utf-8")
    (reports_dir / f"latest-{run.city}.html").write_text(html, encoding="utf-8")
    return path
