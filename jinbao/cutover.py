"""City cutovers for migration leads: rehearse, execute, verify, roll back, strictly in that order.

The log lives in ``province.cutover_log`` beside the data it describes, so the
order is enforced whichever machine runs the next step. Each step writes its row
(status ``running``) before it starts and completes it when it ends, so a step
killed half-way is visible: an interrupted execute is finished by the next
``--execute`` or removed by ``--rollback``, and production loads refuse the city
until then (:func:`load_refusal`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from extractors import SourceEndpoint, extract_parallel
from jinbao.errors import JinbaoError
from jinbao.runner import CityRun, new_batch_id, run_city
from jinbao.spec import CitySpec
from loaders.schema import SCHEMA, source_table
from loaders.target import ProvincialTarget, digest_sql
from transforms.lookup import PersonIndex
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
        f"SELECT step, status FROM {SCHEMA}.cutover_log WHERE city = {target.marker} ORDER BY started_at",
        [city],
    )
    return [(r[0], r[1]) for r in rows]


OK = ("passed", "forced")
UNFINISHED = ("running", "interrupted")


def _last(steps: list[tuple[str, str]], name: str, statuses: tuple[str, ...] | None = OK) -> int:
    hits = [i for i, (s, st) in enumerate(steps) if s == name and (statuses is None or st in statuses)]
    return hits[-1] if hits else -1


def state(target: ProvincialTarget, city: str) -> str:
    """Where the city's cutover stands, from its latest execute or rollback:

    ``not executed`` (neither yet), ``executed`` (the latest execute passed), ``interrupted`` (the latest
    execute never finished: killed after some rows may have landed), ``failed`` (it finished but did not
    reconcile) or ``rolled back``.
    """
    steps = history(target, city)
    execute, rollback = _last(steps, "execute", None), _last(steps, "rollback")
    if execute < 0 and rollback < 0:
        return "not executed"
    if rollback > execute:
        return "rolled back"
    status = steps[execute][1]
    return "executed" if status in OK else "interrupted" if status in UNFINISHED else "failed"


def check_order(target: ProvincialTarget, city: str, step: str) -> str | None:
    """None if ``step`` may run now, else why not."""
    steps = history(target, city)
    now = state(target, city)
    if step == "execute":
        if now == "interrupted":
            return None  # an execute that never finished is finished by the next one
        latest = _last(steps, "rehearse", None)
        if latest != _last(steps, "rehearse"):
            if steps[latest][1] in UNFINISHED:
                return "the latest rehearsal did not finish (interrupted): rehearse again"
            return "the latest rehearsal failed: fix it and rehearse again"
        if _last(steps, "rehearse") <= max(_last(steps, "execute"), _last(steps, "rollback")):
            return "no passing rehearsal since the last execute or rollback: run --rehearse first"
    if step == "verify" and now != "executed":
        return (
            f"the city is {now}: nothing to verify"
            if now != "interrupted"
            else ("the latest execute did not finish: run --execute again to finish it, or --rollback")
        )
    if step == "rollback" and now in ("not executed", "rolled back"):
        return f"the city is not executed (or was rolled back): nothing to {step}"
    return None


def load_refusal(target: ProvincialTarget, city: str) -> str | None:
    """Why a production load of ``city`` must not run now (None: it may).

    A city is loaded in production only while it is cut over: its latest execute passed and was not
    rolled back since. Otherwise a load would put back a city that was rolled back, or put into the
    business partitions a city that never passed a rehearsal.
    """
    now = state(target, city)
    if now == "executed":
        return None
    why = {
        "not executed": "its cutover was never executed: run `jinbao cutover {city} --rehearse`, then --execute",
        "rolled back": "its cutover was rolled back: rehearse and execute it again first",
        "interrupted": "its latest `cutover --execute` did not finish: run `jinbao cutover {city} --execute` to "
        "finish it, or --rollback to remove it",
        "failed": "its latest `cutover --execute` did not reconcile: see its report, then rehearse and execute again",
    }[now]
    return f"{city}: refusing a production load: " + why.format(city=city) + " (or use --force)"


@contextlib.contextmanager
def city_held(target: ProvincialTarget, city: str):
    """Hold ``city`` for one load or cutover step: none of them runs beside another of the same city.

    A load beside a rollback would put rows back into a city the rollback just removed.
    """
    if not target.try_lock(f"cutover.{city}"):
        raise CutoverOrderError(
            f"{city}: a cutover step or a load of this city is running; try again when it ends"
        )
    try:
        yield
    finally:
        target.unlock(f"cutover.{city}")


def _begin_log(
    target: ProvincialTarget, city: str, step: str, started: dt.datetime, batch_id: str | None
) -> None:
    """The step's row, written before it does anything: a step killed half-way stays visible as running."""
    m = target.marker
    target.execute(
        f"UPDATE {SCHEMA}.cutover_log SET status = 'interrupted' WHERE city = {m} AND status = 'running'",
        [city],
    )
    target.execute(
        f"INSERT INTO {SCHEMA}.cutover_log (city, started_at, step, status, batch_id) VALUES ({m}, {m}, {m}, 'running', {m})",
        [city, started, step, batch_id],
    )


def _log(
    target: ProvincialTarget, result: StepResult, started: dt.datetime, forced: bool, batch_id: str | None
) -> None:
    status = "forced" if forced and result.passed else ("passed" if result.passed else "failed")
    m = target.marker
    target.execute(
        f"UPDATE {SCHEMA}.cutover_log SET status = {m}, batch_id = {m}, finished_at = {m}, detail = {m}, report = {m} "
        f"WHERE city = {m} AND started_at = {m}",
        [
            status,
            batch_id,
            _now(),
            json.dumps(result.detail, ensure_ascii=False, default=str),
            str(result.report) if result.report else None,
            result.city,
            started,
        ],
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
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}")
    target.scope = "P"
    target.ensure_schema()
    try:
        with city_held(target, spec.city):
            return _run_step(step, spec, endpoint, target, reports_dir, force=force, checker=checker)
    finally:
        target.scope = "P"


def _run_step(step, spec, endpoint, target, reports_dir, *, force, checker) -> StepResult:
    from quality.report import write_report, write_step_report

    why_not = check_order(target, spec.city, step)
    if why_not and not force:
        raise CutoverOrderError(f"{spec.city}: cannot {step}: {why_not} (or use --force)")
    resumed = step == "execute" and state(target, spec.city) == "interrupted"
    started = _now()
    result = StepResult(spec.city, step, passed=False)
    batch_id = new_batch_id(spec.city) if step in ("rehearse", "execute") else None
    if force and why_not:
        result.detail["forced"] = why_not
    _begin_log(target, spec.city, step, started, batch_id)
    if step in ("rehearse", "execute"):
        scope = "T" if step == "rehearse" else "P"
        target.scope = scope
        target.begin()
        result.detail["cleared"] = target.remove_city(spec.city) if step == "rehearse" else {}
        target.commit()
        if resumed:
            result.detail["resumed"] = "finishes the execute that was interrupted"
        run = run_city(spec, endpoint, target, checker=checker, mode="full", scope=scope, batch_id=batch_id)
        result.run, result.passed = run, run.reconciled
        result.detail["partition"] = "test (T)" if scope == "T" else "business partitions"
        result.report = write_report(
            run,
            target,
            reports_dir,
            target_label=target.url,
            step={
                "name": step,
                "partition": result.detail["partition"],
                "resumed": result.detail.get("resumed"),
                "forced": result.detail.get("forced"),
            },
        )
        if step == "execute" and run.reconciled:
            target.scope = "T"
            target.begin()
            result.detail["test_partition_cleared"] = target.remove_city(spec.city)
            target.commit()
        target.scope = "P"
    elif step == "verify":
        result.detail.update(verify_city(spec, endpoint, target, checker=checker))
        result.passed = (
            all(e["matches"] for e in result.detail["entities"].values())
            and result.detail["consolidated"]["matches"]
        )
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


def source_digests(name: str, rows: pa.Table) -> pa.Table:
    """(k, h): each unified row's key and content digest, computed in DuckDB (no Python loop per row)."""
    key, digest = digest_sql(source_table(name))
    con = duckdb.connect()
    try:
        con.register("unified_rows", rows)
        return con.sql(f"SELECT {key} AS k, {digest} AS h FROM unified_rows").to_arrow_table()
    finally:
        con.close()


def verify_city(
    spec: CitySpec, endpoint: SourceEndpoint, target: ProvincialTarget, limit: int = 20, checker=None
) -> dict:
    """Re-read the live source and reconcile it with the province row by row.

    Per entity, the source's rows are normalized as a load would and reduced to (key, content digest)
    pairs; the province computes the same pairs for the city's rows and the two sets are joined in the
    database. Rows missing from the province, extra in it and changed are counted and listed (up to
    ``limit`` keys each, ID numbers masked); quarantined rows are compared by (source key, reason),
    the rows the load's expectations hold back (EXPECTATION_FAILED) included. Counts and money totals
    are kept beside them.
    """
    from quality.checks import BatchChecker

    own = checker is None
    checker = checker or BatchChecker()
    try:
        return _verify(spec, endpoint, target, limit, checker)
    finally:
        if own:
            checker.close()


def _verify(spec: CitySpec, endpoint: SourceEndpoint, target: ProvincialTarget, limit: int, checker) -> dict:
    from jinbao.masking import mask_ids_in_text
    from jinbao.runner import hold_back, source_keys
    from quality.reconcile import money_total
    from transforms.reasons import Reason

    out: dict = {"entities": {}}
    for name, entity in spec.ordered_entities():
        index = PersonIndex(target.person_index(spec.city)) if name not in ("person", "employer") else None
        digests, held = [], []
        expect_rows, expect_money = 0, Decimal(0)
        for batch in extract_parallel(spec.source, entity, endpoint):
            norm = normalize_batch(name, batch, entity, spec.city, person_index=index)
            rows, q = norm.rows, norm.quarantined
            keys, reasons = q.column("source_key"), q.column("reason_code")
            failed = checker.submit(name, rows).result().failed_rows
            if failed:  # held back by the expectations, as the load does
                rows, bad = hold_back(rows, failed)
                keys = pa.concat_arrays([keys.combine_chunks(), source_keys(bad, entity)])
                reasons = pa.concat_arrays(
                    [
                        reasons.combine_chunks(),
                        pa.repeat(pa.scalar(str(Reason.EXPECTATION_FAILED)), bad.num_rows),
                    ]
                )
                expect_money -= money_total(bad, money_columns(name))
            expect_rows += rows.num_rows
            expect_money += norm.extracted_money - norm.quarantined_money
            digests.append(source_digests(name, rows))
            held.append(
                pa.table(
                    {
                        "k": pc.binary_join_element_wise(keys, reasons, "|"),
                        "h": pa.array([""] * len(keys), pa.string()),
                    }
                )
            )
        empty = pa.table({"k": pa.array([], pa.string()), "h": pa.array([], pa.string())})
        rows = target.diff_rows(
            source_table(name), spec.city, pa.concat_tables(digests) if digests else empty, limit
        )
        quarantined = target.diff_quarantine(
            name, spec.city, pa.concat_tables(held) if held else empty, limit
        )
        _, got_money = target.entity_totals(source_table(name), spec.city, money_columns(name))
        masked = {
            f"{kind}_keys": [mask_ids_in_text(k) for k in rows[f"{kind}_keys"]]
            for kind in ("missing", "extra", "changed")
        }
        masked.update(
            {
                f"quarantine_{kind}_keys": [mask_ids_in_text(k) for k in quarantined[f"{kind}_keys"]]
                for kind in ("missing", "extra", "changed")
            }
        )
        differences = sum(rows[k] + quarantined[k] for k in ("missing", "extra", "changed"))
        out["entities"][name] = {
            "source_rows": expect_rows,
            "province_rows": rows["province_rows"],
            "source_money": str(expect_money),
            "province_money": str(got_money),
            "missing": rows["missing"],
            "extra": rows["extra"],
            "changed": rows["changed"],
            "quarantine_missing": quarantined["missing"],
            "quarantine_extra": quarantined["extra"],
            "quarantine_changed": quarantined["changed"],
            **masked,
            "matches": differences == 0 and expect_money == got_money,
        }
    # the consolidated persons the city's rows lean on: per-city rows can all match while a person is gone
    gaps = target.consolidation_gaps(spec.city, limit)
    for key in ("persons_missing_ids", "persons_differing_ids"):
        gaps[key] = [mask_ids_in_text(k) for k in gaps[key]]
    out["consolidated"] = gaps
    return out
