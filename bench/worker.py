"""One method, in its own process: ``python -m bench.worker METHOD '{json args}'``.

Each method moves the same source rows (the spec's columns of dbo.ac43) into its own
PostgreSQL database, times its stages with ``time.perf_counter``, reads the simulator's CPU
around the timed part, and writes a JSON result to ``args["result_path"]``. Each baseline also
copies the person table's number and name (for the Chinese-text check), timed apart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


def _server_cpu(args: dict) -> float:
    try:
        t = psutil.Process(args["server_pid"]).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return float("nan")


def _odbc(args: dict) -> str:
    return (
        f"DRIVER={{FreeTDS}};SERVER=127.0.0.1;PORT={args['port']};DATABASE={args['database']};"
        f"TDS_Version=7.4;ClientCharset=UTF-8;UID={args['user']};PWD={{{args['password']}}}"
    )


def _short(table: str) -> str:
    """The target table's name for a source table (``dbo.T_PAYMENT`` → ``t_payment``)."""
    return table.split(".")[-1].lower()


def _select(table: str, columns: list[str]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table}"


# -- CPU by thread group and child process --------------------------------------------------------
class CpuWatch(threading.Thread):
    """CPU seconds of this process's threads by name group, and of its child processes.

    Threads are sampled every 0.25 s (a thread that ended keeps its last sample), so a short-lived
    thread's last quarter of a second may be missed; child processes are listed again every 2 s.
    """

    def __init__(self):
        super().__init__(daemon=True, name="bench-cpuwatch")
        self.me = psutil.Process()
        self.seen: dict[int, tuple[str, float]] = {}
        self.children: dict[int, float] = {}
        self.kids: list[psutil.Process] = []
        self.halt = threading.Event()
        self.lock = threading.Lock()

    @staticmethod
    def _group(name: str) -> str:
        if name == "MainThread":
            return "main thread"
        if name.startswith("extract"):
            return "extract threads"
        return "other threads"

    def sample(self, children: bool = True) -> None:
        names = {t.native_id: t.name for t in threading.enumerate()}
        try:
            threads = self.me.threads()
            if children or not self.kids:
                self.kids = self.me.children(recursive=True)  # scans /proc: not at every sample
        except psutil.Error:
            return
        with self.lock:
            for t in threads:
                name = names.get(t.id, self.seen.get(t.id, ("native",))[0])
                if name == "bench-cpuwatch":
                    continue
                self.seen[t.id] = (name, t.user_time + t.system_time)
            for k in self.kids:
                try:
                    c = k.cpu_times()
                    self.children[k.pid] = c.user + c.system
                except psutil.Error:
                    pass

    def snapshot(self) -> dict[str, float]:
        self.sample()
        out: dict[str, float] = defaultdict(float)
        with self.lock:
            for name, cpu in self.seen.values():
                out[self._group(name) if name != "native" else "native threads"] += cpu
            out["child processes"] = sum(self.children.values())
        return dict(out)

    def run(self) -> None:
        n = 0
        while not self.halt.wait(0.25):
            n += 1
            self.sample(children=n % 8 == 0)


def _diff(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {
        k: round(b.get(k, 0.0) - a.get(k, 0.0), 3)
        for k in sorted(set(a) | set(b))
        if b.get(k, 0.0) - a.get(k, 0.0) > 0.0005
    }


# -- jinbao ---------------------------------------------------------------------------------------
class StageClock:
    """Seconds per stage per entity, measured on the runner's thread; nested timed calls count once."""

    STAGES = ("extract", "transform", "validate", "load")

    def __init__(self):
        self.entity = "setup"
        self.totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.rows: dict[str, int] = defaultdict(int)  # rows extracted so far, per entity
        self.sql: dict[str, dict[str, list]] = defaultdict(dict)  # entity -> statement -> [calls, seconds]
        self.local = threading.local()

    @contextmanager
    def stage(self, name: str):
        if getattr(self.local, "busy", False):
            yield
            return
        self.local.busy = True
        t = time.perf_counter()
        try:
            yield
        finally:
            self.totals[self.entity][name] += time.perf_counter() - t
            self.local.busy = False

    def timed(self, name: str, fn: Callable) -> Callable:
        def wrapper(*a, **kw):
            with self.stage(name):
                return fn(*a, **kw)

        wrapper.__wrapped__ = fn
        return wrapper

    def timed_sql(self, fn: Callable, label: Callable[..., str]) -> Callable:
        """Seconds per SQL statement (its first words), outermost call only: where the load stage goes."""

        def wrapper(*a, **kw):
            if getattr(self.local, "in_sql", False):
                return fn(*a, **kw)
            self.local.in_sql = True
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                entry = self.sql[self.entity].setdefault(label(*a, **kw), [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - t
                self.local.in_sql = False

        return wrapper

    def timed_iter(self, name: str, fn: Callable) -> Callable:
        """A generator function whose every ``next()`` counts as ``name`` (waiting for the producer included)."""

        def wrapper(*a, **kw) -> Iterator:
            it = iter(fn(*a, **kw))
            while True:
                with self.stage(name):
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                self.rows[self.entity] += getattr(item, "num_rows", 0)
                yield item

        return wrapper


class _TimedFuture:
    def __init__(self, fut, clock: StageClock):
        self._fut, self._clock = fut, clock

    def result(self, timeout=None):
        with self._clock.stage("validate"):
            return self._fut.result(timeout)

    def __getattr__(self, name):
        return getattr(self._fut, name)


class _TimedChecker:
    """Wraps the runner's checker: submitting a page and waiting for its verdict count as validation."""

    def __init__(self, inner, clock: StageClock):
        self._inner, self._clock = inner, clock

    def submit(self, entity, rows):
        with self._clock.stage("validate"):
            return _TimedFuture(self._inner.submit(entity, rows), self._clock)

    def check(self, entity, rows):
        with self._clock.stage("validate"):
            return self._inner.check(entity, rows)

    def settle(self):
        with self._clock.stage("validate"):
            return self._inner.settle()

    def close(self):
        self._inner.close()

    def __getattr__(self, name):
        return getattr(self._inner, name)


_NOT_LOAD = {"close", "url", "marker", "scope"}
_SQL_METHODS = ("execute", "fetchall", "fetch_arrow", "_rowcount")


def _sql_label(sql, *a, **kw) -> str:
    text = re.sub(r"\s+", " ", str(sql)).strip()
    text = re.sub(r"'[^']*'", "'…'", text)
    return text[:110]


def _stage_label(name, *a, **kw) -> str:
    return f"stage(): CREATE TEMP TABLE {name} + Arrow CSV + COPY"


def _instrument_target(target, clock: StageClock) -> list[str]:
    """Every public method of the target counts as load (staging, merge, quarantine, ledger, totals)."""
    import inspect

    for name in _SQL_METHODS:
        if hasattr(target, name):
            setattr(target, name, clock.timed_sql(getattr(target, name), _sql_label))
    if hasattr(target, "stage"):
        target.stage = clock.timed_sql(target.stage, _stage_label)
    wrapped = []
    names = {n for cls in type(target).__mro__ for n, v in vars(cls).items() if inspect.isfunction(v)}
    for name in sorted(names):
        if name.startswith("_") or name in _NOT_LOAD:
            continue
        setattr(target, name, clock.timed("load", getattr(target, name)))
        wrapped.append(name)
    return wrapped


def run_jinbao(args: dict) -> dict:
    import jinbao.runner as runner
    from extractors import SourceEndpoint
    from jinbao.demo import with_driver
    from jinbao.spec import city_spec
    from jinbao.targets import open_target

    spec = with_driver(city_spec(args["city"]), args.get("driver"))
    # Imports are outside the timed part for every method (pandas and dlt import theirs above): the
    # modules a jinbao run imports on first use are imported here.
    if spec.source.driver == "arrow_odbc":
        import arrow_odbc  # noqa: F401

    if args.get("mode") == "incremental":  # its group-bys load Acero; a full load never does (importing it
        import pyarrow.dataset  # noqa: F401  # there would add the library's memory to the full load's peak)

    import loaders.postgres_target  # noqa: F401

    endpoint = SourceEndpoint("127.0.0.1", args["port"], args["user"], args["password"], spec.source.database)
    clock = StageClock()
    cpu = CpuWatch()
    if not args.get("profiled"):  # under py-spy the bench's own sampling would show up in the profile
        cpu.start()
    notes: list[str] = []
    entities: dict[str, dict] = {}

    # The hooks wrap names the runner looks up at call time; jinbao's code is not changed.
    for attr, wrap in (("extract_parallel", clock.timed_iter), ("normalize_batch", clock.timed)):
        if hasattr(runner, attr):
            setattr(
                runner,
                attr,
                wrap("extract" if attr == "extract_parallel" else "transform", getattr(runner, attr)),
            )
        else:
            notes.append(f"jinbao.runner.{attr} not found: its stage is counted as 'other'")
    run_entity = runner.run_entity
    current: dict = {}

    def timed_entity(spec_, name, *a, **kw):
        clock.entity = name
        c0, s0, t0 = cpu.snapshot(), _server_cpu(args), time.perf_counter()
        current.update(name=name, t0=t0, s0=s0)
        try:
            rec = run_entity(spec_, name, *a, **kw)
        finally:
            seconds = time.perf_counter() - t0
            entities[name] = {
                "seconds": round(seconds, 3),
                "server_cpu_s": round(_server_cpu(args) - s0, 3),
                "cpu_s": _diff(c0, cpu.snapshot()),
                "stages": {k: round(v, 3) for k, v in clock.totals[name].items()},
                "sql": _top_sql(clock.sql[name]),
            }
            clock.entity = "after"
            current.clear()
        return rec

    def progress() -> dict:
        """Where the run stands, for the parent when it has to stop a run that is too slow."""
        now = time.perf_counter()
        cur = dict(current)
        out = {"entities": dict(entities), "elapsed_s": round(now - started, 3)}
        if cur:
            name = cur["name"]
            out["current"] = {
                "entity": name,
                "rows": clock.rows[name],
                "seconds": round(now - cur["t0"], 3),
                "server_cpu_s": round(_server_cpu(args) - cur["s0"], 3),
                "stages": {k: round(v, 3) for k, v in clock.totals[name].items()},
                "sql": _top_sql(clock.sql[name]),
            }
        return out

    def write_progress() -> None:
        path = Path(args["progress_path"])
        while not cpu.halt.wait(1.0):
            try:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(progress(), default=str))
                tmp.replace(path)
            except Exception:  # a progress report is best effort; the run goes on
                pass

    runner.run_entity = timed_entity
    c_start, s_start = cpu.snapshot(), _server_cpu(args)
    started = time.perf_counter()
    if args.get("progress_path"):
        threading.Thread(target=write_progress, daemon=True, name="bench-progress").start()
    inner = runner.default_checker(args.get("mode", "full"))  # what a load run from the CLI or a DAG uses
    checker = _TimedChecker(inner, clock)
    try:
        with open_target(args["pg_url"]) as target:
            wrapped = _instrument_target(target, clock)
            run = runner.run_city(spec, endpoint, target, checker=checker, mode=args.get("mode", "full"))
    finally:
        checker.close()
    total = time.perf_counter() - started
    cpu_total = _diff(c_start, cpu.snapshot())
    cpu.halt.set()
    for name, rec in run.entities.items():
        e = entities.setdefault(name, {})
        e.update(
            rows=rec.extracted_rows,
            loaded=rec.loaded_rows,
            quarantined=rec.quarantined_rows,
            merged=rec.merged_rows,
            inserted=rec.inserted,
            updated=rec.updated,
            unchanged=rec.unchanged,
            extracted_money=str(rec.extracted_money),
            loaded_money=str(rec.loaded_money),
            quarantined_money=str(rec.quarantined_money),
            target_rows=rec.target_rows,
            target_money=str(rec.target_money),
            target_quarantined=rec.target_quarantined,
            reconciled=rec.reconciled,
            quarantine_by_reason=dict(rec.quarantine_by_reason),
        )
        staged = sum(e.get("stages", {}).values())
        e.setdefault("stages", {})["other"] = round(max(0.0, e.get("seconds", 0.0) - staged), 3)
    return {
        "driver": spec.source.driver,
        "mode": args.get("mode", "full"),
        "seconds": round(total, 3),
        "rows": sum(e.get("rows", 0) for e in entities.values()),
        "server_cpu_s": round(_server_cpu(args) - s_start, 3),
        "cpu_s": cpu_total,
        "setup_stages": {k: round(v, 3) for k, v in clock.totals["setup"].items()},
        "entities": entities,
        "reconciled": run.reconciled,
        "batch_failures": run.batch_failures[:20],
        "instrumented_target_methods": wrapped,
        "notes": notes,
    }


def run_ceilings(args: dict) -> dict:
    """jinbao's stages without the load: how fast each driver extracts the contribution table, and how fast
    the headline driver's pages are normalized and validated (Great Expectations, in this process)."""
    import duckdb
    import pyarrow as pa

    from extractors import SourceEndpoint, extract_parallel
    from jinbao.demo import with_driver
    from jinbao.spec import city_spec
    from quality.checks import BatchChecker, PageChecker
    from transforms.normalize import normalize_batch

    base = city_spec(args["city"])
    entity = base.entities["contribution"]
    endpoint = SourceEndpoint("127.0.0.1", args["port"], args["user"], args["password"], base.source.database)
    out: dict = {"extract": {}, "notes": []}
    for driver in args["drivers"]:
        spec = with_driver(base, driver)
        s0, t0, rows = _server_cpu(args), time.perf_counter(), 0
        try:
            for batch in extract_parallel(spec.source, entity, endpoint):
                rows += batch.num_rows
        except Exception as exc:
            out["extract"][driver] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        t = time.perf_counter() - t0
        out["extract"][driver] = {
            "rows": rows,
            "seconds": round(t, 3),
            "rows_per_s": round(rows / t),
            "server_cpu_s_per_mrows": round((_server_cpu(args) - s0) / rows * 1e6, 3),
        }
    # the person index the runner would read from the target, here from the generator's truth
    con = duckdb.connect(args["city_db"], read_only=True)
    index = con.sql("SELECT source_person_no, id_number FROM truth.person_xref").to_arrow_table()
    con.close()
    index = pa.table(
        {
            "source_person_no": index.column(0).cast(pa.string()),
            "id_number": index.column(1).cast(pa.string()),
        }
    )
    spec = with_driver(base, args["drivers"][0])
    checker = BatchChecker()
    vectorized = PageChecker(sample_rows=0)
    norm_s = check_s = vec_s = 0.0
    rows = checked = 0
    t0 = time.perf_counter()
    for batch in extract_parallel(spec.source, entity, endpoint):
        t = time.perf_counter()
        norm = normalize_batch("contribution", batch, entity, args["city"], person_index=index)
        norm_s += time.perf_counter() - t
        rows += batch.num_rows
        t = time.perf_counter()
        vectorized.judge("contribution", norm.rows)
        vec_s += time.perf_counter() - t
        if checked < args.get("validate_rows", 200_000):
            t = time.perf_counter()
            checker.check("contribution", norm.rows)
            check_s += time.perf_counter() - t
            checked += norm.rows.num_rows
    total = time.perf_counter() - t0
    out["pipeline"] = {
        "driver": args["drivers"][0],
        "rows": rows,
        "extract_and_transform_rows_per_s": round(rows / (total - check_s - vec_s)),
        "vectorized_validate_rows_per_s": round(rows / vec_s) if vec_s else None,
        "transform_rows_per_s": round(rows / norm_s) if norm_s else None,
        "validate_rows_per_s": round(checked / check_s) if check_s else None,
        "validated_rows": checked,
    }
    out["seconds"] = round(total, 3)
    out["rows"] = rows
    return out


def _top_sql(stats: dict[str, list], n: int = 8) -> list[dict]:
    top = sorted(stats.items(), key=lambda kv: -kv[1][1])[:n]
    return [{"sql": k, "calls": c, "seconds": round(t, 3)} for k, (c, t) in top]


# -- naive pandas ---------------------------------------------------------------------------------
def run_pandas(args: dict) -> dict:
    import warnings

    import pandas as pd
    import pyodbc
    import sqlalchemy as sa

    warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
    engine = sa.create_engine(args["pg_url"].replace("postgresql://", "postgresql+psycopg://", 1))
    conn = pyodbc.connect(_odbc(args))  # what a user writes: defaults everywhere
    s0 = _server_cpu(args)
    t0 = time.perf_counter()
    df = pd.read_sql(_select(args["table"], args["columns"]), conn)
    t1 = time.perf_counter()
    s1 = _server_cpu(args)
    df.to_sql(_short(args["table"]), engine)
    t2 = time.perf_counter()
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    rows = len(df)
    del df
    tt = time.perf_counter()
    pd.read_sql(_select(args["text_table"], args["text_columns"]), conn).to_sql(
        _short(args["text_table"]), engine
    )
    text_s = time.perf_counter() - tt
    return {
        "seconds": round(t2 - t0, 3),
        "rows": rows,
        "stages": {"read_sql (extract + DataFrame)": round(t1 - t0, 3), "to_sql (load)": round(t2 - t1, 3)},
        "server_cpu_s": round(s1 - s0, 3),
        "target_table": f"public.{_short(args['table'])}",
        "text_table": f"public.{_short(args['text_table'])}",
        "text_seconds": round(text_s, 3),
        "dtypes": dtypes,
        "notes": [],
    }


# -- dlt ------------------------------------------------------------------------------------------
_SA_TYPE = re.compile(r"^(\w+)(?:\((\d+)(?:,\s*(\d+))?\))?$")


def _sa_table(metadata, name: str, sql_types: dict[str, str], key: str | None):
    import sqlalchemy as sa
    from sqlalchemy.dialects import mssql

    cols = []
    for col, t in sql_types.items():
        m = _SA_TYPE.match(t.lower())
        base, a, b = m.group(1), int(m.group(2) or 0), int(m.group(3) or 0)
        if base in ("char", "varchar", "nchar", "nvarchar"):
            typ = getattr(mssql, base.upper())(a)
        elif base in ("decimal", "numeric"):
            typ = getattr(mssql, base.upper())(a, b)
        else:
            typ = {
                "int": mssql.INTEGER,
                "bigint": mssql.BIGINT,
                "smallint": mssql.SMALLINT,
                "money": mssql.MONEY,
                "datetime": mssql.DATETIME,
                "float": mssql.FLOAT,
            }[base]()
        cols.append(sa.Column(col, typ, primary_key=(col == key)))
    return sa.Table(name, metadata, *cols)


def _money_as_decimal(sql_type):
    import sqlalchemy as sa
    from sqlalchemy.dialects import mssql

    return sa.Numeric(19, 4) if isinstance(sql_type, mssql.MONEY) else sql_type


def _reflection_probe(url: str, table: str) -> dict:
    """What SQLAlchemy's mssql dialect sends when dlt reflects the table, and where the simulator stops it.

    ``Table(autoload_with=...)`` stops at its first failing query; each reflection step is then tried
    on its own so every query the simulator would need to answer is named.
    """
    import sqlalchemy as sa

    sent: list[str] = []
    engine = sa.create_engine(url)
    sa.event.listen(
        engine, "before_cursor_execute", lambda c, cur, stmt, *a: sent.append(" ".join(stmt.split()))
    )
    out: dict = {"queries": sent}
    try:
        sa.Table(_short(table), sa.MetaData(schema="dbo"), autoload_with=engine)
        out["reflection"] = "ok"
        return out
    except Exception as exc:
        out["reflection"] = "failed"
        out["error"] = str(exc).splitlines()[0][:400]
    steps = {}
    dialect = engine.dialect
    with engine.connect() as conn:
        for step in ("has_table", "get_columns", "get_pk_constraint", "get_foreign_keys", "get_indexes"):
            before = len(sent)
            try:
                getattr(dialect, step)(conn, _short(table), schema="dbo")
                steps[step] = {"ok": True}
            except Exception as exc:
                steps[step] = {"ok": False, "error": str(exc).splitlines()[0][:300], "queries": sent[before:]}
            conn.rollback()
            if step == "has_table":  # pretend the table was found, to see what reflection asks next
                dialect.has_table = lambda *a, **kw: True
    out["steps"] = steps
    engine.dispose()
    return out


def run_dlt(args: dict) -> dict:
    import logging

    import dlt
    import sqlalchemy as sa
    from dlt.sources.sql_database import sql_table

    logging.getLogger("dlt").setLevel(logging.ERROR)
    url = (
        f"mssql+pyodbc://{args['user']}:{args['password']}@127.0.0.1:{args['port']}/{args['database']}"
        "?driver=FreeTDS&TDS_Version=7.4"
    )
    notes: list[str] = []
    probe = _reflection_probe(url, args["table"])
    md = sa.MetaData(schema="dbo")
    table_name = args["table"].split(".")[-1]
    text_name = args["text_table"].split(".")[-1]
    _sa_table(md, table_name, args["sql_types"], args["key"])
    _sa_table(md, text_name, args["text_sql_types"], None)
    cfg = args.get("dlt", {})
    kw: dict = {"chunk_size": cfg["chunk_size"]} if cfg.get("chunk_size") else {}
    # MONEY is a type dlt does not know: the pyarrow backend then takes each chunk's decimal precision from
    # its values and the extract stops with IncompatibleArrowSchema once a later chunk holds a larger amount
    # (seen on the 1M table). The fix a user finds: map MONEY to DECIMAL(19,4).
    kw["type_adapter_callback"] = _money_as_decimal
    notes.append(
        "MONEY mapped to DECIMAL(19,4) with type_adapter_callback: without it the extract fails with "
        "IncompatibleArrowSchema on the 1M table (dlt infers each chunk's decimal precision from its values)"
    )
    run_kw = {"loader_file_format": cfg["loader_file_format"]} if cfg.get("loader_file_format") else {}
    with tempfile.TemporaryDirectory(prefix="jbbench-dlt-") as pipelines_dir:
        pipeline = dlt.pipeline(
            pipeline_name=f"bench_{args['method']}",
            destination=dlt.destinations.postgres(args["pg_url_pw"]),
            dataset_name="bench",
            pipelines_dir=pipelines_dir,
        )
        res = sql_table(credentials=url, table=table_name, metadata=md, backend="pyarrow", **kw)
        s0 = _server_cpu(args)
        t0 = time.perf_counter()
        pipeline.run(res, **run_kw)
        seconds = time.perf_counter() - t0
        server = _server_cpu(args) - s0
        stages = {}
        for step in pipeline.last_trace.steps:
            if step.step in ("extract", "normalize", "load") and step.finished_at and step.started_at:
                stages[step.step] = round((step.finished_at - step.started_at).total_seconds(), 3)
        files = []
        for pkg in pipeline.list_completed_load_packages():
            info = pipeline.get_load_package_info(pkg)
            files += [j.file_path.rsplit("/", 1)[-1] for jobs in info.jobs.values() for j in jobs]
        tt = time.perf_counter()
        pipeline.run(
            sql_table(credentials=url, table=text_name, metadata=md, backend="pyarrow", **kw), **run_kw
        )
        text_s = time.perf_counter() - tt
        naming = (
            pipeline.default_schema.naming
        )  # dlt's names in the destination (snake_case: T_PAYMENT → t_payment)
        loaded_name, loaded_text = (
            naming.normalize_table_identifier(table_name),
            naming.normalize_table_identifier(text_name),
        )
    return {
        "seconds": round(seconds, 3),
        "rows": None,
        "stages": stages,
        "server_cpu_s": round(server, 3),
        "target_table": f"bench.{loaded_name}",
        "text_table": f"bench.{loaded_text}",
        "text_seconds": round(text_s, 3),
        "config": {
            "backend": "pyarrow",
            "source_url": "mssql+pyodbc (FreeTDS)",
            "type_adapter_callback": "MONEY → DECIMAL(19,4)",
            **{k: v for k, v in kw.items() if k != "type_adapter_callback"},
            **run_kw,
        },
        "loader_files": sorted({re.sub(r"\.[0-9a-f]{10}\.\d+\.", ".*.", f) for f in files}),
        "reflection_probe": probe,
        "notes": notes,
    }


# -- raw floor ------------------------------------------------------------------------------------
_PG_TYPE = {
    "char": "text",
    "varchar": "text",
    "nchar": "text",
    "nvarchar": "text",
    "int": "integer",
    "bigint": "bigint",
    "smallint": "smallint",
    "money": "numeric(19,4)",
    "datetime": "timestamp(3)",
    "float": "double precision",
}


def pg_type(sql_type: str) -> str:
    m = _SA_TYPE.match(sql_type.lower())
    base, a, b = m.group(1), m.group(2), m.group(3)
    if base in ("decimal", "numeric"):
        return f"numeric({a},{b or 0})"
    return _PG_TYPE[base]


def _freebcp(args: dict, conf_dir: Path, query: str, out: Path) -> int:
    env = {**os.environ, "FREETDSCONF": str(conf_dir / "freetds.conf")}
    cmd = [
        "freebcp",
        query,
        "queryout",
        str(out),
        "-c",
        "-S",
        "bench",
        "-U",
        args["user"],
        "-P",
        args["password"],
        "-D",
        args["database"],
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    m = re.search(r"(\d+) rows copied", p.stdout)
    if p.returncode != 0 or not m:
        tail = (p.stdout + p.stderr)[-1500:].replace(args["password"], "***")
        raise RuntimeError(f"freebcp failed (exit {p.returncode}): {tail}")
    return int(m.group(1))


def _copy(con, table: str, columns: list[str], path: Path) -> str:
    import psycopg

    opts = "FORMAT csv, DELIMITER E'\\t', NULL '', QUOTE E'\\x01'"
    cols = ", ".join(columns)
    try:
        con.execute(f"COPY {table} ({cols}) FROM '{path}' WITH ({opts})")
        return "server-side COPY FROM file"
    except psycopg.errors.InsufficientPrivilege:
        con.rollback() if not con.autocommit else None
        with (
            con.cursor().copy(f"COPY {table} ({cols}) FROM STDIN WITH ({opts})") as cp,
            open(path, "rb") as f,
        ):
            while chunk := f.read(1 << 20):
                cp.write(chunk)
        return "COPY FROM STDIN (client streams the file)"


def run_raw(args: dict) -> dict:
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="jbbench-raw-"))
    work.chmod(0o755)  # the PostgreSQL server reads the dump itself
    try:
        (work / "freetds.conf").write_text(
            "[global]\n\tclient charset = UTF-8\n\ttds version = 7.4\n"
            f"[bench]\n\thost = 127.0.0.1\n\tport = {args['port']}\n\ttds version = 7.4\n\tclient charset = UTF-8\n"
        )
        dump = work / "table.tsv"
        with psycopg.connect(args["pg_url"], autocommit=True) as con:
            con.execute("CREATE SCHEMA bench")
            for name, types in (
                (args["table"], args["sql_types"]),
                (args["text_table"], args["text_sql_types"]),
            ):
                defs = ", ".join(f"{c} {pg_type(t)}" for c, t in types.items())
                con.execute(f"CREATE TABLE bench.{name.split('.')[-1]} ({defs})")
            s0 = _server_cpu(args)
            t0 = time.perf_counter()
            rows = _freebcp(args, work, _select(args["table"], args["columns"]), dump)
            t1 = time.perf_counter()
            server = _server_cpu(args) - s0
            dump.chmod(0o644)
            how = _copy(con, f"bench.{_short(args['table'])}", args["columns"], dump)
            t2 = time.perf_counter()
            size = dump.stat().st_size
            dump.unlink()
            tt = time.perf_counter()
            text_dump = work / "text.tsv"
            _freebcp(args, work, _select(args["text_table"], args["text_columns"]), text_dump)
            text_dump.chmod(0o644)
            _copy(con, f"bench.{_short(args['text_table'])}", args["text_columns"], text_dump)
            text_s = time.perf_counter() - tt
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    return {
        "seconds": round(t2 - t0, 3),
        "rows": rows,
        "stages": {"freebcp queryout": round(t1 - t0, 3), "COPY": round(t2 - t1, 3)},
        "server_cpu_s": round(server, 3),
        "target_table": f"bench.{_short(args['table'])}",
        "text_table": f"bench.{_short(args['text_table'])}",
        "text_seconds": round(text_s, 3),
        "dump_mb": round(size / 2**20, 1),
        "copy": how,
        "notes": [],
    }


METHODS = {
    "jinbao": run_jinbao,
    "naive_pandas": run_pandas,
    "dlt_default": run_dlt,
    "dlt_fastest": run_dlt,
    "raw_floor": run_raw,
    "jinbao_ceilings": run_ceilings,
}


def main() -> None:
    method, args = sys.argv[1], json.loads(sys.argv[2])
    args["method"] = method
    try:
        result = METHODS[method](args)
        result["ok"] = True
    except BaseException as exc:
        traceback.print_exc()
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    result["method"] = method
    Path(args["result_path"]).write_text(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
