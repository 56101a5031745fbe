"""``python -m bench [--scale full|small|1m|5m]``: run every method at each scale, check, profile, report."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench import checks, pg
from bench import profile as prof
from bench.config import (
    BENCH_DIR,
    BUDGET_S,
    CITY,
    DLT_FASTEST,
    ENTITY,
    INCREMENTAL_CHANGE_SHARE,
    JINBAO_LIMIT_S,
    METHODS,
    PANDAS_MAX_PROJECTED_MB,
    PANDAS_MAX_PROJECTED_S,
    PROFILE_LIMIT_S,
    SCALE_SETS,
    SCALES,
    SOURCE_PASSWORD,
    SOURCE_USER,
    WORKER_TIMEOUT_S,
)
from bench.measure import run_worker
from bench.report import machine_description, ratios, write_json, write_markdown
from bench.source import SimServer, change_rows, ensure_city, source_facts

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - T0:6.0f}s] {msg}", flush=True)


def worker_args(
    method: str, spec, facts, server: SimServer, url: str, driver: str | None, mode: str = "full"
) -> dict:
    entity = spec.entities[ENTITY]
    person = spec.entities["person"]
    text_cols = [person.source_for("source_person_no"), person.source_for("name")]
    return {
        "city": CITY,
        "port": server.port,
        "server_pid": server.proc.pid,
        "user": SOURCE_USER,
        "password": SOURCE_PASSWORD,
        "database": spec.source.database,
        "pg_url": url,
        "pg_url_pw": pg.db_url(url.rsplit("/", 1)[1], password="bench"),
        "table": entity.table,
        "columns": facts.columns,
        "sql_types": facts.sql_types,
        "key": entity.key[0],
        "text_table": person.table,
        "text_columns": text_cols,
        "text_sql_types": {c: person.all_columns[c].type for c in text_cols},
        "driver": driver,
        "mode": mode,
        "dlt": DLT_FASTEST if method == "dlt_fastest" else {},
    }


def summarize(method: str, result: dict | None, watch, facts, tail: str) -> dict:
    """One method's figures: rows/s end to end and per stage, memory, server CPU, what went wrong."""
    out: dict = {"ok": bool(result and result.get("ok")), "worker": watch.to_json()}
    if not out["ok"] and method == "jinbao" and watch.timed_out and watch.progress:
        partial = _partial_jinbao(watch, facts)
        if partial:
            out.update(partial)
            return out
    if not out["ok"]:
        out["error"] = (result or {}).get("error") or f"worker exited {watch.returncode}" + (
            f" (stopped at the {watch.wall_s:.0f} s limit)" if watch.timed_out else ""
        )
        cur = (watch.progress or {}).get("current")
        if cur:
            out["error"] += (
                f"; it was loading {cur['entity']} ({cur['rows']:,} rows in {cur['seconds']:.0f} s)"
            )
        out["stderr_tail"] = tail[-1500:]
        return out
    if method == "jinbao":
        e = result["entities"][ENTITY]
        rows, seconds, stages, server_cpu = e["rows"], e["seconds"], e["stages"], e["server_cpu_s"]
        out["city"] = {
            "rows": result["rows"],
            "seconds": result["seconds"],
            "rows_per_s": round(result["rows"] / result["seconds"]) if result["seconds"] else None,
            "server_cpu_s": result["server_cpu_s"],
            "cpu_s": result["cpu_s"],
            "entities": {
                n: {
                    k: v
                    for k, v in x.items()
                    if k
                    in (
                        "rows",
                        "seconds",
                        "loaded",
                        "quarantined",
                        "stages",
                        "server_cpu_s",
                        "cpu_s",
                        "inserted",
                        "updated",
                        "unchanged",
                    )
                }
                for n, x in result["entities"].items()
            },
            "setup_stages": result.get("setup_stages"),
        }
        out["driver"] = result["driver"]
        out["reconciled"] = result["reconciled"]
        out["entity_cpu_s"] = e.get("cpu_s")
        out["sql"] = e.get("sql")
    else:
        rows = result["rows"] if result.get("rows") is not None else facts.rows
        seconds, stages, server_cpu = result["seconds"], result["stages"], result["server_cpu_s"]
        for k in ("config", "loader_files", "reflection_probe", "dtypes", "copy", "dump_mb", "text_seconds"):
            if k in result:
                out[k] = result[k]
    out.update(
        rows=rows,
        seconds=seconds,
        rows_per_s=round(rows / seconds) if seconds else None,
        peak_rss_mb=round(watch.peak_rss_mb, 1),
        stages={k: {"seconds": v, "rows_per_s": round(rows / v) if v else None} for k, v in stages.items()},
        server_cpu_s=server_cpu,
        server_cpu_s_per_mrows=round(server_cpu / rows * 1e6, 3) if rows else None,
        notes=result.get("notes", []),
    )
    return out


def _partial_jinbao(watch, facts) -> dict | None:
    """A jinbao run stopped at the time limit: the contribution entity's rate so far, flagged as partial."""
    p = watch.progress
    cur = p.get("current") or {}
    e = p["entities"].get(ENTITY) or (cur if cur.get("entity") == ENTITY else None)
    if not e or not e.get("rows") or e.get("seconds", 0) < 5:
        return None
    stages = dict(e.get("stages", {}))
    # the remainder includes the statement that was still running when the run was stopped
    stages["other"] = round(max(0.0, e["seconds"] - sum(stages.values())), 3)
    done = {
        n: {"seconds": x.get("seconds"), "stages": x.get("stages"), "sql": x.get("sql")}
        for n, x in p["entities"].items()
    }
    return {
        "ok": True,
        "partial": True,
        "reason": f"stopped after {watch.wall_s:.0f} s (limit): {e['rows']:,} of {facts.rows:,} contribution rows "
        f"read in {e['seconds']:.0f} s (stage 'other' holds the statement still running when it was stopped)",
        "rows": e["rows"],
        "seconds": e["seconds"],
        "rows_per_s": round(e["rows"] / e["seconds"]),
        "peak_rss_mb": round(watch.peak_rss_mb, 1),
        "stages": {
            k: {"seconds": v, "rows_per_s": round(e["rows"] / v) if v else None} for k, v in stages.items()
        },
        "server_cpu_s": e.get("server_cpu_s"),
        "server_cpu_s_per_mrows": round(e["server_cpu_s"] / e["rows"] * 1e6, 3)
        if e.get("server_cpu_s")
        else None,
        "sql": e.get("sql"),
        "entities_done": done,
        "notes": [
            f"partial: the run was stopped at the bench's limit; rate over the first {e['rows']:,} rows"
        ],
    }


def run_ceilings(spec, facts, server: SimServer, db: Path) -> dict:
    drivers = [
        spec.source.driver,
        *[d for d in ("pyodbc", "arrow_odbc", "pymssql") if d != spec.source.driver],
    ]
    args = {
        **worker_args("jinbao", spec, facts, server, pg.db_url("unused"), None),
        "drivers": drivers,
        "city_db": str(db),
    }
    result, watch, tail = run_worker("jinbao_ceilings", args, server=server.ps, timeout_s=WORKER_TIMEOUT_S)
    if not result or not result.get("ok"):
        return {
            "error": (result or {}).get("error") or f"worker exited {watch.returncode}",
            "stderr_tail": tail[-800:],
        }
    result["peak_rss_mb"] = round(watch.peak_rss_mb, 1)
    return result


def run_profile(spec, facts, server: SimServer, driver: str | None, scale: str) -> dict:
    if not prof.py_spy():
        return {"skipped": "py-spy not on PATH (make bench runs with `uv run --with py-spy`)"}
    name = f"jbbench_{scale}_profile"
    url = pg.create_database(name)
    with tempfile.TemporaryDirectory(prefix="jbbench-prof-") as tmp:
        raw = Path(tmp) / "profile.txt"
        args = {**worker_args("jinbao", spec, facts, server, url, driver), "profiled": True}
        result, watch, tail = run_worker(
            "jinbao", args, server=server.ps, pg_db=name, wrap=prof.command(raw), timeout_s=PROFILE_LIMIT_S
        )
        pg.drop_database(name)
        if not raw.exists():
            return {"skipped": f"py-spy wrote nothing: {tail[-500:]}"}
        # py-spy's raw samples, kept outside the work tree for a closer look (flamegraph.pl)
        kept = Path(tempfile.gettempdir()) / f"jinbao-bench-profile-{scale}.txt"
        shutil.copyfile(raw, kept)
        folded = prof.fold(raw.read_text())
        folded["raw"] = str(kept)
    folded["scale"] = scale
    folded["driver"] = spec.source.driver
    folded["wall_s"] = round(watch.wall_s, 1)
    if result and result.get("ok"):
        e = result["entities"][ENTITY]
        folded["contribution_rows_per_s_under_profiler"] = round(e["rows"] / e["seconds"])
    elif watch.timed_out:
        folded["stopped_after_s"] = PROFILE_LIMIT_S
    return folded


def projected_seconds(prev: dict | None, rows: int) -> float | None:
    if not prev or not prev.get("ok") or not prev.get("rows_per_s"):
        return None
    return rows / prev["rows_per_s"] + 15  # + process start, imports and the text copy


def extrapolate(prev: dict, rows: int, reason: str) -> dict:
    """Figures carried over from the smaller scale, assuming a constant rate and memory growing with rows."""
    growth = rows / prev["rows"] if prev.get("rows") else 1.0
    return {
        "ok": True,
        "extrapolated": True,
        "reason": reason,
        "rows": rows,
        "rows_per_s": prev["rows_per_s"],
        "seconds": round(rows / prev["rows_per_s"], 1),
        "peak_rss_mb": round(prev["peak_rss_mb"] * growth, 1)
        if prev.get("memory_grows")
        else prev["peak_rss_mb"],
        "server_cpu_s_per_mrows": prev.get("server_cpu_s_per_mrows"),
        "stages": {},
        "notes": [f"not run at this scale: {reason}; rate from the smaller scale"],
    }


def incremental(spec, facts, db: Path, url: str, dbname: str, driver: str | None, full: dict) -> dict:
    entity = spec.entities[ENTITY]
    out: dict = {"change_share": INCREMENTAL_CHANGE_SHARE, "watermark": entity.watermark}
    if not entity.watermark:
        out["blocked"] = (
            f"cities/{CITY}.yml has no watermark for {ENTITY}: an incremental run re-reads the whole "
            "table (measured below as a re-run)"
        )
    with tempfile.TemporaryDirectory(prefix="jbbench-inc-") as tmp:
        changed_db = Path(tmp) / "changed.duckdb"
        change = change_rows(db, changed_db, spec, INCREMENTAL_CHANGE_SHARE)
        import duckdb

        con = duckdb.connect(str(changed_db), read_only=True)
        key, col = entity.key[0], change["column"]
        new_values = {
            str(k): Decimal(v)
            for k, v in con.execute(
                f'SELECT "{key}", "{col}" FROM {entity.table} WHERE "{key}" IN (SELECT unnest(?))',
                [change["keys"]],
            ).fetchall()
        }
        con.close()
        with SimServer(changed_db) as server:
            result, watch, tail = run_worker(
                "jinbao",
                worker_args("jinbao", spec, facts, server, url, driver, "incremental"),
                server=server.ps,
                pg_db=dbname,
            )
    out["changed_rows"] = change["changed"]
    s = summarize("jinbao", result, watch, facts, tail)
    if not s["ok"]:
        out.update(ok=False, error=s["error"], stderr_tail=s.get("stderr_tail"))
        return out
    e = result["entities"][ENTITY]
    out.update(
        ok=True,
        city_seconds=result["seconds"],
        contribution_seconds=e["seconds"],
        contribution_rows_read=e["rows"],
        contribution_updated=e["updated"],
        contribution_inserted=e["inserted"],
        peak_rss_mb=round(watch.peak_rss_mb, 1),
        full_city_seconds=full["city"]["seconds"],
        full_contribution_seconds=full["seconds"],
        share_of_full_city=round(result["seconds"] / full["city"]["seconds"], 4),
        share_of_full_contribution=round(e["seconds"] / full["seconds"], 4),
        target_share=0.05,
        check=checks.check_incremental(url, CITY, change, new_values),
        entities={
            n: {
                "rows_read": x.get("rows"),
                "seconds": x.get("seconds"),
                "updated": x.get("updated"),
                "inserted": x.get("inserted"),
            }
            for n, x in result["entities"].items()
        },
    )
    out["meets_target"] = out["share_of_full_city"] <= 0.05
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--scale", default="full", choices=sorted(SCALE_SETS), help="full = 1m and 5m")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--driver", default=None, help="jinbao's driver (default: the city spec's)")
    ap.add_argument("--also-drivers", default="", help="more jinbao drivers to measure at the first scale")
    ap.add_argument(
        "--dlt-fastest", default=None, help="JSON overriding dlt's fastest configuration (to try others)"
    )
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument(
        "--no-ceilings", action="store_true", help="skip jinbao's stages-without-load measurement"
    )
    ap.add_argument("--no-incremental", action="store_true")
    ap.add_argument("--out", default=str(BENCH_DIR), help="where RESULTS.md and results.json go")
    ap.add_argument("--command", default=None, help="the command line to print in RESULTS.md")
    opts = ap.parse_args(argv)
    Path(opts.out).mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop servers and workers on the way out

    from jinbao.demo import with_driver
    from jinbao.spec import city_spec

    methods = [m for m in opts.methods.split(",") if m]
    if opts.dlt_fastest:
        DLT_FASTEST.clear()
        DLT_FASTEST.update(json.loads(opts.dlt_fastest))
    spec = with_driver(city_spec(CITY), opts.driver)
    scales = SCALE_SETS[opts.scale]
    pg.drop_stale()
    doc: dict = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": opts.command
        or "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_description(),
        "city": CITY,
        "entity": ENTITY,
        "table": spec.entities[ENTITY].table,
        "jinbao_driver": spec.source.driver,
        "dlt_fastest_config": DLT_FASTEST,
        "scales": {},
    }
    prev: dict[str, dict] = {}
    for i, scale_name in enumerate(scales):
        scale = SCALES[scale_name]
        db = ensure_city(scale, log)
        facts = source_facts(db, spec)
        log(
            f"{scale_name}: {facts.rows:,} {facts.table} rows ({scale.persons:,} persons), city rows {facts.city_rows}"
        )
        entry: dict = {"persons": scale.persons, "source": facts.to_json(), "methods": {}}
        doc["scales"][scale_name] = entry
        jinbao_db = None
        with SimServer(db) as server:
            runs = [(m, spec.source.driver) for m in methods]
            if i == 0:
                runs += [("jinbao", d) for d in opts.also_drivers.split(",") if d and d != spec.source.driver]
            for method, driver in runs:
                key = method if (method != "jinbao" or driver == spec.source.driver) else f"jinbao[{driver}]"
                if key.startswith("jinbao[") and entry["methods"].get("jinbao", {}).get("partial"):
                    log(f"{scale_name} {key}: skipped (jinbao with the spec's driver did not finish in time)")
                    continue
                est = projected_seconds(prev.get(key), facts.rows)
                elapsed = time.monotonic() - T0
                reason = None
                mem = (prev[key]["peak_rss_mb"] * facts.rows / prev[key]["rows"]) if est else None
                if method == "naive_pandas" and est and est > PANDAS_MAX_PROJECTED_S:
                    reason = f"projected {est:.0f} s > {PANDAS_MAX_PROJECTED_S} s"
                elif method == "naive_pandas" and mem and mem > PANDAS_MAX_PROJECTED_MB:
                    reason = f"projected peak memory {mem:,.0f} MB > {PANDAS_MAX_PROJECTED_MB:,} MB (it holds the whole table)"
                elif method not in ("jinbao", "raw_floor") and est and elapsed + est > BUDGET_S:
                    reason = f"the bench's {BUDGET_S // 60}-minute budget (projected {est:.0f} s, {elapsed:.0f} s used)"
                elif method != "jinbao" and est and est > WORKER_TIMEOUT_S:  # jinbao runs to its own limit
                    reason = f"projected {est:.0f} s > the {WORKER_TIMEOUT_S} s limit per method"
                if reason:
                    log(f"{scale_name} {key}: extrapolated ({reason})")
                    entry["methods"][key] = extrapolate(prev[key], facts.rows, reason)
                    continue
                name = f"jbbench_{scale_name}_{key.replace('[', '_').replace(']', '')}"
                url = pg.create_database(name)
                log(f"{scale_name} {key}: running" + (f" (projected {est:.0f} s)" if est else ""))
                limit = JINBAO_LIMIT_S if method == "jinbao" else WORKER_TIMEOUT_S
                result, watch, tail = run_worker(
                    method,
                    worker_args(method, spec, facts, server, url, driver),
                    server=server.ps,
                    pg_db=name,
                    timeout_s=limit,
                )
                s = summarize(method, result, watch, facts, tail)
                if s.get("partial"):
                    s["correctness"] = None
                elif s["ok"]:
                    if method == "jinbao":
                        s["correctness"] = checks.check_jinbao(url, CITY, result, facts)
                    else:
                        s["correctness"] = checks.check_copy(
                            url, result["target_table"], result["text_table"], facts
                        )
                    s["memory_grows"] = method == "naive_pandas"
                entry["methods"][key] = s
                log(
                    f"{scale_name} {key}: "
                    + (
                        f"{s['rows_per_s']:,} rows/s, peak RSS {s['peak_rss_mb']:.0f} MB, "
                        f"correct={(s.get('correctness') or {}).get('ok')}"
                        + (f" (PARTIAL: {s['reason']})" if s.get("partial") else "")
                        if s["ok"]
                        else f"FAILED: {s['error'][:300]}"
                    )
                )
                if key == "jinbao" and s["ok"] and s.get("partial") and not opts.no_incremental:
                    entry["incremental"] = {
                        "blocked": "the full load did not finish within the bench's limit, "
                        "so there is nothing to run incrementally against"
                    }
                    pg.drop_database(name)
                elif key == "jinbao" and s["ok"] and not opts.no_incremental:
                    jinbao_db = (name, url)
                else:
                    pg.drop_database(name)
            if i == 0 and "jinbao" in methods and not opts.no_ceilings:
                log(f"{scale_name}: jinbao's stages without the load, per driver")
                entry["jinbao_ceilings"] = run_ceilings(spec, facts, server, db)
            if not opts.no_profile and i == 0 and "jinbao" in methods:
                log(f"{scale_name}: profiling jinbao with py-spy")
                doc["profile"] = run_profile(spec, facts, server, spec.source.driver, scale_name)
        if jinbao_db:
            log(f"{scale_name}: incremental run ({INCREMENTAL_CHANGE_SHARE:.1%} of {facts.table} changed)")
            entry["incremental"] = incremental(
                spec, facts, db, jinbao_db[1], jinbao_db[0], spec.source.driver, entry["methods"]["jinbao"]
            )
            pg.drop_database(jinbao_db[0])
        entry["methods"].get("jinbao", {}).update(ratios(entry["methods"]))
        prev = entry["methods"]
        write_json(doc, Path(opts.out) / "results.json")  # partial results survive an interrupted run
    doc["elapsed_s"] = round(time.monotonic() - T0, 1)
    write_json(doc, Path(opts.out) / "results.json")
    write_markdown(doc, Path(opts.out) / "RESULTS.md")
    log(f"done in {doc['elapsed_s']:.0f} s: {Path(opts.out) / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
