"""Run an entity's expectation suite on every transformed batch and say which rows failed."""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

logging.getLogger("great_expectations").setLevel(logging.ERROR)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class CheckResult:
    """Failed row positions with the expectations each row failed, plus batch-level failures."""

    failed_rows: dict[int, list[str]] = field(default_factory=dict)
    batch_failures: list[str] = field(default_factory=list)  # expectations that failed without row indices
    evaluated: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed_rows and not self.batch_failures


class BatchChecker:
    """One ephemeral GX context reused for all batches of a run (context setup is the slow part)."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        from quality.expectations import suite_for

        self._ctx = gx.get_context(mode="ephemeral")
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        self._ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self._ctx.data_sources.add_pandas("jinbao_batches")
        self._defs = {}
        self._suites = {}
        self._needed: dict[str, set[str]] = {}
        self._suite_for = suite_for

    def _columns(self, entity: str, suite) -> set[str]:
        if entity not in self._needed:
            self._needed[entity] = {e.column for e in suite.expectations if getattr(e, "column", None)}
        return self._needed[entity]

    def submit(self, entity: str, rows: pa.Table) -> Future:
        """Same as :meth:`check`, as an already-completed future (see :class:`BackgroundChecker`)."""
        fut: Future = Future()
        fut.set_result(self.check(entity, rows))
        return fut

    def close(self) -> None:
        pass

    def _definition(self, entity: str):
        if entity not in self._defs:
            asset = self._source.add_dataframe_asset(entity)
            self._defs[entity] = asset.add_batch_definition_whole_dataframe(f"{entity}_batch")
            self._suites[entity] = self._ctx.suites.add(self._suite_for(entity))
        return self._defs[entity], self._suites[entity]

    def check(self, entity: str, rows: pa.Table) -> CheckResult:
        if rows.num_rows == 0:
            return CheckResult()
        definition, suite = self._definition(entity)
        # only the columns the suite looks at: converting and fingerprinting the rest is wasted work
        needed = [c for c in rows.column_names if c in self._columns(entity, suite)]
        df = rows.select(needed).to_pandas()
        batch = definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        failed: dict[int, list[str]] = {}
        batch_failures: list[str] = []
        for r in result.results:
            if r.success:
                continue
            cfg = r.expectation_config
            label = f"{cfg.type}({cfg.kwargs.get('column', '')})"
            idx = (r.result or {}).get("unexpected_index_list")
            if idx:
                for i in idx:
                    failed.setdefault(int(i), []).append(label)
            else:
                batch_failures.append(label)
        return CheckResult(failed_rows=failed, batch_failures=batch_failures, evaluated=len(result.results))


_worker_checker: BatchChecker | None = None


def _worker_init() -> None:
    global _worker_checker
    _exit_with_parent()
    _worker_checker = BatchChecker()


def _exit_with_parent() -> None:
    """A loader killed with SIGKILL cannot stop its checker: the checker notices and exits by itself."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _worker_check(entity: str, rows: pa.Table) -> CheckResult:
    return _worker_checker.check(entity, rows)


class BackgroundChecker:
    """Runs the suites in a separate process, so validating page n overlaps loading page n-1.

    Great Expectations is pure Python and the heaviest stage; on two cores a second
    process nearly halves a load's wall time. Results are identical to BatchChecker's.
    """

    def __init__(self) -> None:
        import multiprocessing

        # spawn: the loader may hold threads (extraction, a simulated server) that fork would copy mid-lock
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
        self._pool.submit(_noop)  # start importing Great Expectations now, while extraction begins

    def submit(self, entity: str, rows: pa.Table) -> Future:
        if rows.num_rows == 0:
            fut: Future = Future()
            fut.set_result(CheckResult())
            return fut
        return self._pool.submit(_worker_check, entity, rows)

    def check(self, entity: str, rows: pa.Table) -> CheckResult:
        return self.submit(entity, rows).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BackgroundChecker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _noop() -> None:
    return None
