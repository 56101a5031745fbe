"""City cutovers for migration leads: rehearse, execute, verify, roll back, strictly in that order.

The log lives in ``province.cutover_log`` beside the data it describes, so the
order is enforced whichever machine runs the next step.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from extractors import SourceEndpoint, extract_parallel
from jinbao.errors import JinbaoError
from jinbao.runner import CityRun, run_city
from jinbao.spec import CitySpec
from loaders.schema import SCHEMA
from loaders.target import ProvincialTarget
from transforms.normalize import money_columns, normalize_batch

STEPS = ("rehearse", "execute", "verify", "rollback")


class CutoverOrderError(JinbaoError):
    """A cutover step was asked for before the step it depends on passed."""


@dataclass
class StepResult:
    city: str
    step: str
    passed: bool
    detail: dict = field(default_factory=dict)
    run: CityRun | None = None
    report: Path | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def history(target: ProvincialTarget, city: str) -> list[tuple[str, str]]:
    """(step, status) of the city's cutover steps, oldest first."""
    rows = target.fetchall(
        f"SELECT step, status FROM {SCHEMA}.cutover_log WHERE city = {target.marker} ORDER BY started_at", [city]
    )
    return [(r[0], r[1]) for r in rows]


def check_order(target: ProvincialTarget, city: str, step: str) -> str | None:
    """None if ``step`` may run now, else why not."""
    steps = history(target, city)

    def last(name: str, ok_only: bool = True) -> int:
        hits = [i for i, (s, st) in enumerate(steps) if s == name and (st in ("passed", "forced") or not ok_only)]
        return hits[-1] if hits else -1

    executed, rolled_back = last("execute"), last("rollback")
    if step == "execute":
        if last("rehearse", ok_only=False) != last("rehearse"):
            return "the latest rehearsal failed: fix it and rehearse again"
        if last("rehearse") <= max(executed, rolled_back):
            return "no passing rehearsal since the last execute or rollback: run --rehearse first"
    if step in ("verify", "rollback") and executed <= rolled_back:
        return f"the city is not executed (or was rolled back): nothing to {step}"
    return None


def _log(target: ProvincialTarget, result: StepResult, started: dt.datetime, forced: bool, batch_id: str | None) -> None:
    status = "forced" if forced and result.passed else ("passed" if result.passed else "failed")
    m = target.marker
    target.execute(
        f"INSERT INTO {SCHEMA}.cutover_log (city, started_at, step, status, batch_id, finished_at, detail, report) "
        f"VALUES ({', '.join([m] * 8)})",
        [result.city, started, result.step, status, batch_id, _now(),
         json.dumps(result.detail, ensure_ascii=False, default=str), str(result.report) if result.report else None],
    )


def run_step(
    step: str,
    spec: CitySpec,
    endpoint: SourceEndpoint,
    target: ProvincialTarget,
    reports_dir: Path,
    *,
    force: bool = False,
    checker=None,
) -> StepResult:
    """Run one cutover step for one city; refuses to run out of order unless ``force``."""
    from quality.report import write_report, write_step_report

    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}")
    target.scope = "P"
    target.ensure_schema()
    why_not = check_order(target, spec.city, step)
    if why_not and not force:
        raise CutoverOrderError(f"{spec.city}: cannot {step}: {why_not} (or use --force)")
    started = _now()
    result = StepResult(spec.city, step, passed=False)
    batch_id = None
    if step in ("rehearse", "execute"):
        scope = "T" if step == "rehearse" else "P"
        target.scope = scope
        target.begin()
        result.detail["cleared"] = target.remove_city(spec.city) if step == "rehearse" else {}
        target.commit()
        run = run_city(spec, endpoint, target, checker=checker, mode="full", scope=scope)
        result.run, result.passed, batch_id = run, run.reconciled, run.batch_id
        result.detail["partition"] = "test (T)" if scope == "T" else "business partitions"
        result.report = write_report(run, target, reports_dir, target_label=target.url)
        if step == "execute" and run.reconciled:
            target.scope = "T"
            target.begin()
            result.detail["test_partition_cleared"] = target.remove_city(spec.city)
            target.commit()
        target.scope = "P"
    elif step == "verify":
        result.detail = verify_city(spec, endpoint, target)
        result.passed = all(e["matches"] for e in result.detail["entities"].values())
    else:
        target.begin()
        try:
            result.detail["removed"] = target.remove_city(spec.city)
            target.commit()
        except BaseException:
            target.rollback()
            raise
        result.passed = True
    if result.report is None:
        result.report = write_step_report(result, target, reports_dir)
    _log(target, result, started, force and why_not is not None, batch_id)
    return result


def verify_city(spec: CitySpec, endpoint: SourceEndpoint, target: ProvincialTarget) -> dict:
    """Re-read the live source and compare what it should give with what the province holds."""
    out: dict = {"entities": {}}
    for name, entity in spec.ordered_entities():
        index = target.person_index(spec.city) if name != "person" else None
        expect_rows, expect_money, expect_q = 0, Decimal(0), 0
        for batch in extract_parallel(spec.source, entity, endpoint):
            norm = normalize_batch(name, batch, entity, spec.city, person_index=index)
            expect_rows += norm.rows.num_rows
            expect_q += norm.quarantined.num_rows
            expect_money += norm.extracted_money - norm.quarantined_money
        table = "person_xref" if name == "person" else name
        got_rows, got_money = target.entity_totals(table, spec.city, money_columns(name))
        got_q = target.quarantine_count(name, spec.city)
        out["entities"][name] = {
            "source_rows": expect_rows, "province_rows": got_rows, "source_money": str(expect_money),
            "province_money": str(got_money), "source_quarantined": expect_q, "province_quarantined": got_q,
            "matches": (expect_rows, expect_money, expect_q) == (got_rows, got_money, got_q),
        }
    return out
