"""The one runner: extract → transform → check → load → reconcile, for one city.

The CLI and the DAGs call :func:`run_city` and add nothing but their own interface.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from extractors import SchemaDriftError, Since, SourceEndpoint, check_schema, extract_parallel
from jinbao.memory import release_memory, tune_allocator
from jinbao.spec import CitySpec, EntitySpec
from loaders import ProvincialTarget
from quality.checks import BackgroundChecker, BatchChecker, PageChecker
from quality.reconcile import EntityReconciliation, money_total
from transforms.lookup import PersonIndex
from transforms.normalize import QUARANTINE_SCHEMA, money_columns, normalize_batch
from transforms.reasons import Reason

log = logging.getLogger("jinbao.runner")


@dataclass
class CityRun:
    """Outcome of one city run: per-entity reconciliation and where things stand."""

    city: str
    batch_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    entities: dict[str, EntityReconciliation] = field(default_factory=dict)
    batch_failures: list[str] = field(default_factory=list)
    partition_moves: int = 0  # persons routed to another business partition by this run
    # the city's source person numbers → ID numbers, read once the persons are loaded: every later
    # entity looks its rows' persons up in it
    person_index: PersonIndex | None = field(default=None, repr=False, compare=False)

    @property
    def reconciled(self) -> bool:
        return all(e.reconciled for e in self.entities.values()) and not self.batch_failures


def new_batch_id(city: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{city}-{stamp}-{uuid.uuid4().hex[:6]}"


def _quarantine_rows(
    city: str, entity: str, keys: pa.Array, reason: str, details: list[str], originals: list[dict]
) -> pa.Table:
    from transforms.normalize import _json_default

    return pa.table(
        {
            "source_city": pa.repeat(pa.scalar(city), len(keys)),
            "entity": pa.repeat(pa.scalar(entity), len(keys)),
            "source_key": keys,
            "reason_code": pa.repeat(pa.scalar(str(reason)), len(keys)),
            "reason_detail": details,
            "original_values": [json.dumps(o, ensure_ascii=False, default=_json_default) for o in originals],
        },
        schema=QUARANTINE_SCHEMA,
    )


def source_keys(rows: pa.Table, entity: EntitySpec) -> pa.Array:
    """Each unified row's source key as text (the key columns joined by '|'), for quarantine rows."""
    if "source_key" in rows.column_names:
        return rows.column("source_key").combine_chunks()
    names = [entity.columns[k].to for k in entity.key]
    if all(n and n in rows.column_names for n in names):
        parts = [pc.cast(rows.column(n), pa.string()) for n in names]
        joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")
        return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
    return pc.cast(pa.array(np.arange(rows.num_rows)), pa.string())


def hold_back(rows: pa.Table, positions: Iterable[int]) -> tuple[pa.Table, pa.Table]:
    """(the rows kept, the rows at ``positions`` in position order): how a load and a verify set aside
    the rows the expectations refused."""
    held = pa.array(sorted(positions), pa.int64())
    mask = np.zeros(rows.num_rows, dtype=bool)
    mask[held.to_numpy()] = True
    return rows.filter(pa.array(~mask)), rows.take(held)


class WatermarkTracker:
    """Highest watermark value seen in this run's batches (the next incremental run starts there)."""

    def __init__(self, column: str | None):
        self.column = column
        self.value = None

    def see(self, batch: pa.RecordBatch) -> None:
        if self.column:
            m = pc.max(batch.column(self.column)).as_py()
            if m is not None and (self.value is None or m > self.value):
                self.value = m

    def text(self) -> str | None:
        if self.value is None:
            return None
        return self.value.isoformat() if isinstance(self.value, dt.datetime) else str(self.value)


def incremental_since(
    target: ProvincialTarget, spec: CitySpec, name: str, entity: EntitySpec
) -> Since | None:
    """Lower bound for an incremental extract: last committed watermark minus the look-back window.

    Rows committed late with an earlier timestamp fall inside the window and are read
    again; the upsert makes re-reading harmless, so nothing is lost and nothing doubles.
    """
    last = target.last_watermark(spec.city, name)
    if last is None:
        return None
    col = entity.all_columns[entity.watermark]
    if col.base_type == "datetime":
        value = dt.datetime.fromisoformat(last) - dt.timedelta(seconds=spec.source.lookback_seconds)
    else:
        value = int(last)
    return Since(entity.watermark, value)


_END = object()


def ahead(items: Iterable, fn: Callable, depth: int = 2) -> Iterator:
    """``fn(item)`` for every item, computed in a thread of its own at most ``depth`` items ahead of the caller."""
    out: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                out.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((fn(item),)):
                    return
            put(_END)
        except BaseException as exc:  # handed to the caller, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close:
                close()

    thread = threading.Thread(target=work, daemon=True, name="normalize")
    thread.start()
    try:
        while True:
            got = out.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got[0]
    finally:
        stop.set()
        thread.join(timeout=10)


def run_entity(
    spec: CitySpec,
    name: str,
    entity: EntitySpec,
    endpoint: SourceEndpoint,
    target: ProvincialTarget,
    checker: PageChecker | BatchChecker | BackgroundChecker,
    batch_id: str,
    started_at: dt.datetime,
    run: CityRun,
    mode: str = "full",
) -> EntityReconciliation:
    city = spec.city
    rec = EntityReconciliation(name)
    run.entities[name] = rec
    drift = check_schema(spec.source, entity, endpoint)
    if drift.differences:
        if spec.source.on_schema_drift == "stop":
            raise SchemaDriftError(f"{city}: {drift}\nFix cities/{city}.yml or the source, then run again.")
        log.warning("%s: %s", city, drift)
    since = None
    if mode == "incremental" and entity.watermark:
        since = incremental_since(target, spec, name, entity)
    watermark = WatermarkTracker(entity.watermark)
    target.begin_entity(name, city)
    money = money_columns(name)
    needs_persons = name != "person" and "source_person_no" in entity.unified_columns
    if name == "person":
        run.person_index = None  # this entity changes it
    if needs_persons and run.person_index is None:
        run.person_index = PersonIndex(target.person_index(city))
    person_index = run.person_index if needs_persons else None

    def ledger(status: str) -> None:
        target.record_batch(
            {
                "batch_id": batch_id,
                "entity": name,
                "source_city": city,
                "started_at": started_at.replace(tzinfo=None),
                "finished_at": dt.datetime.now(dt.UTC).replace(tzinfo=None) if status != "running" else None,
                "status": status,
                "extracted_rows": rec.extracted_rows,
                "loaded_rows": rec.loaded_rows,
                "quarantined_rows": rec.quarantined_rows,
                "merged_rows": rec.merged_rows,
                "extracted_money": rec.extracted_money,
                "loaded_money": rec.loaded_money,
                "quarantined_money": rec.quarantined_money,
                "reconciled": rec.reconciled if status == "committed" else None,
                "mode": mode,
                "watermark": watermark.text(),
            }
        )

    ledger("running")

    def judged(batch: pa.RecordBatch, norm, pending_check) -> tuple:
        """A normalized page with what the expectations refused set aside, ready for :func:`finish`."""
        rows, quarantined = norm.rows, [norm.quarantined]
        q_money = norm.quarantined_money
        check = pending_check.result()
        if check.failed_rows:
            rows, failed = hold_back(rows, check.failed_rows)
            quarantined.append(
                _quarantine_rows(
                    city,
                    name,
                    source_keys(failed, entity),
                    Reason.EXPECTATION_FAILED,
                    ["; ".join(check.failed_rows[i]) for i in sorted(check.failed_rows)],
                    failed.to_pylist(),
                )
            )
            q_money += money_total(failed, money)
        return batch, norm, check, rows, quarantined, q_money, target.prepare(name, rows)

    def finish(batch, norm, check, rows, quarantined, q_money, prepared) -> None:
        """Apply one page: quarantine what the expectations refused, load the rest, one transaction."""
        if check.batch_failures:
            run.batch_failures.extend(f"{name}: {f}" for f in check.batch_failures)
        target.begin()
        try:
            if name == "person":
                result = target.apply_persons(rows)
            elif name == "employer":
                result = target.apply_employers(rows)
            else:
                result = target.apply(name, rows, prepared)
            if result.rejected.num_rows:
                rej = result.rejected
                quarantined.append(
                    _quarantine_rows(
                        city,
                        name,
                        source_keys(rej, entity),
                        Reason.DUPLICATE_SOURCE_KEY,
                        rej.column("reason").to_pylist(),
                        rej.drop_columns(["reason"]).to_pylist(),
                    )
                )
                q_money += money_total(rej, money)
            qtable = pa.concat_tables(quarantined)
            target.quarantine(qtable, batch_id, page_keys=norm.source_keys)
            rec.extracted_rows += norm.extracted_rows
            rec.extracted_money += norm.extracted_money
            rec.loaded_rows += rows.num_rows - result.rejected.num_rows
            rec.loaded_money += money_total(rows, money) - money_total(result.rejected, money)
            rec.quarantined_rows += qtable.num_rows
            rec.quarantined_money += q_money
            rec.inserted += result.inserted
            rec.updated += result.updated
            rec.unchanged += result.unchanged
            for pair in pc.value_counts(qtable.column("reason_code")).to_pylist():
                reason, count = pair["values"], pair["counts"]
                rec.quarantine_by_reason[reason] = rec.quarantine_by_reason.get(reason, 0) + count
            ledger("running")
            target.commit()
        except BaseException:
            target.rollback()
            ledger("failed")
            raise
        log.info(
            "%s %s: page of %d rows, %d loaded, %d quarantined",
            city,
            name,
            batch.num_rows,
            rows.num_rows - result.rejected.num_rows,
            qtable.num_rows,
        )

    def normalized(batch: pa.RecordBatch):
        watermark.see(batch)
        norm = normalize_batch(name, batch, entity, city, person_index=person_index)
        return judged(batch, norm, checker.submit(name, norm.rows))

    # Pages are extracted in their own threads, then normalized and judged in another, a bounded number
    # ahead, while this thread only loads: the database is the slowest stage, so this thread keeps it fed.
    # Arrow kernels and the database drivers let go of the GIL as they work.
    pending = None
    for current in ahead(extract_parallel(spec.source, entity, endpoint, since=since), normalized):
        if pending:
            finish(*pending)
        pending = current
    if pending:
        finish(*pending)

    if mode == "full":
        if name in ("person", "employer"):
            # Records whose ID number (organization code) another source record already holds are merged,
            # not loaded twice.
            rec.merged_rows = target.xref_count(city, name) - target.entity_totals(name, city, [])[0]
            rec.loaded_rows -= rec.merged_rows
        target.drop_stale_quarantine(city, name)
        rec.target_rows, rec.target_money = target.entity_totals(name, city, money)
        rec.target_quarantined = target.quarantine_count(name, city)
    if name == "person":
        run.person_index = None  # read afresh by the next entity that needs it
    # the routing and the next entities' lookups plan on what was just written
    target.refresh_statistics(name, rec.inserted + rec.updated)
    target.refresh_statistics("quarantine", rec.quarantined_rows)
    ledger("committed")
    return rec


def default_checker(mode: str) -> PageChecker:
    """Every row judged by the vectorized rules; Great Expectations re-judges a sample of every page on full loads.

    An incremental run of a few thousand rows would spend most of its time importing Great Expectations
    (about 6 s of CPU), so it relies on the vectorized rules alone, which the full loads keep cross-checked.
    """
    return PageChecker(sample_rows=200 if mode == "full" else 0)


def run_city(
    spec: CitySpec,
    endpoint: SourceEndpoint,
    target: ProvincialTarget,
    *,
    batch_id: str | None = None,
    checker: PageChecker | BatchChecker | BackgroundChecker | None = None,
    on_entity: Callable[[EntityReconciliation], None] | None = None,
    mode: str = "full",
    scope: str = "P",
) -> CityRun:
    """Load one city into the target (``full``, or ``incremental`` from the stored watermarks).

    Returns the reconciliation of every entity. A full run also proves the target holds
    exactly what the source yields for the city; an incremental run reconciles its own rows.
    """
    if mode not in ("full", "incremental"):
        raise ValueError(f"mode must be full or incremental, not {mode!r}")
    started = dt.datetime.now(dt.UTC)
    batch_id = batch_id or new_batch_id(spec.city)
    own_checker = checker is None
    checker = checker or default_checker(mode)
    run = CityRun(city=spec.city, batch_id=batch_id, started_at=started)
    target.scope = scope
    tune_allocator()
    target.ensure_schema()
    target.begin_run(track_touched=mode == "incremental")
    try:
        for name, entity in spec.ordered_entities():
            rec = run_entity(spec, name, entity, endpoint, target, checker, batch_id, started, run, mode)
            if on_entity:
                on_entity(rec)
            release_memory()
        run.person_index = None
        target.begin()
        try:
            run.partition_moves = target.route_partitions(spec.city, only_touched=mode == "incremental")
            target.commit()
        except BaseException:
            target.rollback()
            raise
        # Great Expectations re-judges a sample of every page beside the load; its verdicts are read here
        release_memory()  # first: importing it adds about 140 MB
        run.batch_failures.extend(checker.settle() if hasattr(checker, "settle") else [])
    finally:
        if own_checker:
            checker.close()
    run.finished_at = dt.datetime.now(dt.UTC)
    return run


__all__ = ["CityRun", "default_checker", "hold_back", "new_batch_id", "run_city", "source_keys"]
