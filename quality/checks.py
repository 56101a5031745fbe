"""Run an entity's expectation suite on every transformed batch and say which rows failed.

:class:`PageChecker` is what loads use: every row judged by the vectorized evaluation of the
suite (:mod:`quality.vectorized`), and Great Expectations, in its own process, run on a
sample of every page (the rows that failed first) and required to agree. :class:`BatchChecker`
and :class:`BackgroundChecker` run Great Expectations on every row, in process or beside it.
"""

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

        # quiet before the context is made (it announces its temporary directory); some of Great Expectations'
        # modules set their own logger's level, so each is quieted, not only the package's
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
            logging.getLogger(name).setLevel(logging.ERROR)
        self._ctx = gx.get_context(mode="ephemeral")
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
        self._pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
        )
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


class _Verdict:
    """A page's vectorized verdict, ready at once (the runner's pipeline takes ``result()``)."""

    def __init__(self, verdict: CheckResult):
        self._verdict = verdict

    def result(self, timeout: float | None = None) -> CheckResult:
        return self._verdict


class PageChecker:
    """Vectorized verdict on every row; Great Expectations re-judges a sample of every page.

    Great Expectations runs at tens of thousands of rows a second and takes seconds and
    hundreds of megabytes to import, far more than the rest of a load; so every row is
    judged by the same rules in Arrow (:mod:`quality.vectorized`), each page contributes a
    sample (its failing rows first, then an even spread), and :meth:`settle`, at the end of
    a run, has Great Expectations judge the samples and reports any row where it disagrees.
    """

    def __init__(
        self,
        sample_rows: int = 200,
        max_sample_rows: int = 50_000,
        gx: BatchChecker | BackgroundChecker | None = None,
    ) -> None:
        self.sample_rows, self.max_sample_rows = sample_rows, max_sample_rows
        self._gx = gx
        self._samples: dict[str, list[tuple[pa.Table, list[str]]]] = {}

    def judge(self, entity: str, rows: pa.Table) -> CheckResult:
        from quality.expectations import rules_for
        from quality.vectorized import evaluate_rules

        rules = rules_for(entity)
        failed, batch_failures = evaluate_rules(rules, rows)
        return CheckResult(failed_rows=failed, batch_failures=batch_failures, evaluated=len(rules))

    def _sample_positions(self, n: int, failed: dict[int, list[str]]) -> list[int]:
        cap = self.sample_rows
        chosen = sorted(failed)[: cap // 2]
        step = max(1, n // max(1, cap - len(chosen)))
        return sorted(set(chosen).union(range(0, n, step)))[:cap] if n else []

    def submit(self, entity: str, rows: pa.Table) -> _Verdict:
        """Judge every row now and keep the page's sample for Great Expectations."""
        verdict = self.judge(entity, rows)
        pages = self._samples.setdefault(entity, [])
        held = sum(t.num_rows for t, _ in pages)
        if self.sample_rows > 0 and rows.num_rows and held < self.max_sample_rows:
            positions = self._sample_positions(rows.num_rows, verdict.failed_rows)
            where = [f"page {len(pages) + 1} row {i}" for i in positions]
            pages.append((rows.take(pa.array(positions, pa.int64())), where))
        return _Verdict(verdict)

    def settle(self) -> list[str]:
        """Great Expectations judges the samples kept so far; one line per entity where it disagrees."""
        samples, self._samples = self._samples, {}
        failures = []
        for entity, pages in samples.items():
            if not pages:
                continue
            sample = pa.concat_tables([t for t, _ in pages], promote_options="permissive")
            where = [w for _, ws in pages for w in ws]
            if self._gx is None:
                self._gx = BatchChecker()  # imported only now: a run that samples nothing never pays for it
            theirs = self._gx.check(entity, sample)
            ours = self.judge(entity, sample)
            a = {i: sorted(v) for i, v in theirs.failed_rows.items()}
            b = {i: sorted(v) for i, v in ours.failed_rows.items()}
            if a != b or sorted(theirs.batch_failures) != sorted(ours.batch_failures):
                differing = sorted(i for i in set(a) | set(b) if a.get(i) != b.get(i))
                failures.append(
                    f"{entity}: great_expectations disagrees with the vectorized suite on "
                    f"{len(differing)} of {sample.num_rows} sampled rows ({', '.join(where[i] for i in differing[:3])})"
                )
        return failures

    def check(self, entity: str, rows: pa.Table) -> CheckResult:
        """One page's verdict, with Great Expectations' agreement on its sample."""
        verdict = self.submit(entity, rows).result()
        failures = self.settle()
        if not failures:
            return verdict
        return CheckResult(verdict.failed_rows, [*verdict.batch_failures, *failures], verdict.evaluated)

    def close(self) -> None:
        if self._gx is not None:
            self._gx.close()

    def __enter__(self) -> PageChecker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
