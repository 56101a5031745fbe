"""bench/results.json (figures for scripts) and bench/RESULTS.md (the same, for people)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import psutil

from bench.config import LABELS, ROOT

TARGETS = {"ratio_vs_raw_floor": 0.5, "ratio_vs_dlt": 2.0, "ratio_vs_naive_pandas": 7.0}
PACKAGES = (
    "pyarrow",
    "duckdb",
    "pandas",
    "pyodbc",
    "pymssql",
    "arrow-odbc",
    "psycopg",
    "sqlalchemy",
    "great-expectations",
    "dlt",
    "adbc-driver-postgresql",
    "psutil",
)


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_description() -> dict:
    from bench import pg

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    freetds = next(
        (line.split(":", 1)[1].strip() for line in _run(["tsql", "-C"]).splitlines() if "Version" in line), ""
    )
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": _run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg.server_version(),
        "freetds": freetds,
        "packages": versions,
        "git_commit": _run(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_run(["git", "status", "--porcelain", "--untracked-files=no"])),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def ratios(methods: dict) -> dict:
    """jinbao's contribution rate over each alternative's rate on the same rows."""
    j = methods.get("jinbao", {})
    out = {}
    if not j.get("ok") or not j.get("rows_per_s"):
        return out
    for key, other in (
        ("ratio_vs_naive_pandas", "naive_pandas"),
        ("ratio_vs_dlt", "dlt_fastest"),
        ("ratio_vs_dlt_default", "dlt_default"),
        ("ratio_vs_raw_floor", "raw_floor"),
    ):
        o = methods.get(other, {})
        if o.get("ok") and o.get("rows_per_s"):
            out[key] = round(j["rows_per_s"] / o["rows_per_s"], 3)
    return out


def write_json(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


# -- markdown -------------------------------------------------------------------------------------
def _n(v, digits: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and digits:
        return f"{v:,.{digits}f}"
    return f"{round(v):,}" if isinstance(v, int | float) else str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _correct(m: dict) -> str:
    c = m.get("correctness")
    if m.get("extrapolated"):
        return "(not run)"
    if not c:
        return "–"
    parts = []
    if not c.get("rows_ok"):
        parts.append("rows differ")
    if not c.get("money_ok"):
        parts.append("money differs")
    elif c.get("money_as_float"):
        parts.append("money as float")
    if not c.get("keys_ok"):
        parts.append("keys differ")
    if c.get("truth_ok") is False:
        parts.append("truth differs")
    if c.get("reconciled") is False:
        parts.append("not reconciled")
    if not c.get("text", {}).get("ok"):
        parts.append("text differs")
    return "yes" if not parts else ("yes, " if c.get("ok") else "NO: ") + ", ".join(parts)


def _scale_section(name: str, entry: dict) -> list[str]:
    src = entry["source"]
    methods = entry["methods"]
    j = methods.get("jinbao", {})
    lines = [
        f"## Scale `{name}`: {src['rows']:,} rows of `{src['table']}` ({entry['persons']:,} persons)",
        "",
    ]
    rows = []
    order = [
        "jinbao",
        *[k for k in methods if k.startswith("jinbao[")],
        "raw_floor",
        "dlt_fastest",
        "dlt_default",
        "naive_pandas",
    ]
    for key in order:
        m = methods.get(key)
        if not m:
            continue
        label = LABELS.get(key, key)
        if not m.get("ok"):
            rows.append([label, "failed", "", "", "", "", m.get("error", "")[:200].replace("|", "/")])
            continue
        vs = (
            "1.00"
            if key == "jinbao"
            else (
                f"{j['rows_per_s'] / m['rows_per_s']:.2f}"
                if j.get("rows_per_s") and m.get("rows_per_s")
                else "–"
            )
        )
        rows.append(
            [
                label
                + (" *(extrapolated)*" if m.get("extrapolated") else "")
                + (" *(partial: stopped at the time limit)*" if m.get("partial") else ""),
                _n(m.get("rows_per_s")),
                vs,
                _n(m.get("seconds"), 1),
                _n(m.get("peak_rss_mb")),
                _n(m.get("server_cpu_s_per_mrows"), 2),
                _correct(m),
            ]
        )
        if key == "jinbao" and m.get("city"):
            c = m["city"]
            rows.append(
                [
                    LABELS["jinbao_city"],
                    _n(c["rows_per_s"]),
                    "",
                    _n(c["seconds"], 1),
                    "(same run)",
                    _n(c["server_cpu_s"] / c["rows"] * 1e6 if c["rows"] else None, 2),
                    "",
                ]
            )
    lines += _table(
        ["method", "rows/s", "jinbao ÷ method", "seconds", "peak RSS MB", "server CPU s / M rows", "correct"],
        rows,
    )
    lines.append("")
    if j.get("ok"):
        t = [
            [
                k,
                _n(j.get(k), 2) if j.get(k) is not None else "–",
                f"≥ {v}",
                "met" if j.get(k) is not None and j[k] >= v else "not met",
            ]
            for k, v in TARGETS.items()
        ]
        t.append(
            [
                "jinbao peak RSS MB",
                _n(j.get("peak_rss_mb")),
                "< 512",
                "met" if j.get("peak_rss_mb", 1e9) < 512 else "not met",
            ]
        )
        inc = entry.get("incremental") or {}
        if inc.get("ok"):
            t.append(
                [
                    "incremental / full city time",
                    f"{inc['share_of_full_city']:.1%}",
                    "≤ 5%",
                    "met" if inc["meets_target"] else "not met",
                ]
            )
        lines += ["### Targets (jinbao's contribution rate ÷ the alternative's)", ""]
        lines += _table(["figure", "value", "target", ""], t)
        lines.append("")

    lines += ["### Stages (seconds; rows/s of the stage alone)", ""]
    srows = []
    for key in order:
        m = methods.get(key)
        if not m or not m.get("ok") or not m.get("stages"):
            continue
        srows.append(
            [
                LABELS.get(key, key),
                "; ".join(
                    f"{s}: {v['seconds']:.1f} s ({_n(v['rows_per_s'])}/s)" for s, v in m["stages"].items()
                ),
            ]
        )
    lines += _table(["method", "stages"], srows)
    lines.append("")
    if j.get("partial"):
        lines += [
            f"**jinbao did not finish:** {j['reason']}. Its figures are the contribution entity's rate so far; "
            "correctness is not checked and there is no incremental run.",
            "",
        ]
    if j.get("ok"):
        lines += [
            "jinbao's stages are wall time on the runner's thread: *extract* is time spent waiting for the next "
            "page (extraction runs in its own threads), *validate* is submitting a page to the expectations "
            "process and waiting for its verdict, *load* every call into the target (staging, COPY, merge, "
            "quarantine, ledger, totals), *other* the rest of the runner (quarantine rows, bookkeeping).",
            "",
        ]
    if j.get("ok") and j.get("sql"):
        lines += [
            "### jinbao's calls into PostgreSQL, contribution entity (outermost call, by statement)",
            "",
        ]
        lines += _table(
            ["statement (first words)", "calls", "seconds"],
            [[f"`{q['sql']}`", _n(q["calls"]), _n(q["seconds"], 1)] for q in j["sql"]],
        )
        lines.append("")
    if j.get("ok") and j.get("city"):
        c = j["city"]
        erows = [
            [
                n,
                _n(e.get("rows")),
                _n(e.get("seconds"), 1),
                _n(e["rows"] / e["seconds"]) if e.get("seconds") else "–",
                ", ".join(f"{k} {v:.1f}" for k, v in e.get("stages", {}).items()),
                ", ".join(f"{k} {v:.1f}" for k, v in (e.get("cpu_s") or {}).items()),
                _n(e.get("server_cpu_s"), 1),
            ]
            for n, e in c["entities"].items()
        ]
        lines += ["### jinbao per entity (whole-city run)", ""]
        lines += _table(
            [
                "entity",
                "rows",
                "seconds",
                "rows/s",
                "stages (s)",
                "client CPU s by thread/process",
                "server CPU s",
            ],
            erows,
        )
        lines.append("")

    ceil = entry.get("jinbao_ceilings")
    if ceil:
        lines += ["### jinbao's stages without the load (what each stage alone can reach)", ""]
        if ceil.get("error"):
            lines += [f"Failed: `{ceil['error'][:300]}`", ""]
        else:
            lines += _table(
                ["driver", "extract_parallel alone, rows/s", "server CPU s / M rows"],
                [
                    [
                        d,
                        _n(x.get("rows_per_s")) if "error" not in x else x["error"][:120],
                        _n(x.get("server_cpu_s_per_mrows"), 2),
                    ]
                    for d, x in ceil["extract"].items()
                ],
            )
            pl = ceil.get("pipeline") or {}
            lines += [
                "",
                f"With {pl.get('driver')}: extract + `normalize_batch` on the runner's thread "
                f"{_n(pl.get('extract_and_transform_rows_per_s'))} rows/s; `normalize_batch` alone "
                f"{_n(pl.get('transform_rows_per_s'))} rows/s; the contribution suite evaluated vectorized (what loads use) "
                f"{_n(pl.get('vectorized_validate_rows_per_s'))} rows/s; Great Expectations' contribution suite in-process "
                f"{_n(pl.get('validate_rows_per_s'))} rows/s (first {_n(pl.get('validated_rows'))} rows; loads run it "
                "on a sample of each page, in its own process). "
                "The person index comes from the generator's truth instead of the target.",
                "",
            ]

    lines += ["### Where the CPU went (whole worker run, seconds)", ""]
    crows = []
    for key in order:
        m = methods.get(key)
        if not m or not m.get("ok") or m.get("extrapolated"):
            continue
        w = m["worker"]
        crows.append(
            [
                LABELS.get(key, key),
                _n(w["wall_s"], 1),
                _n(w["client_cpu_s"], 1),
                _n(w["server_cpu_s"], 1),
                _n(w["postgres_cpu_s"], 1),
                _n(w["other_cpu_s"], 1),
                ", ".join(
                    f"{k} {v:.0f}"
                    for k, v in sorted(w["peak_rss_by_process_mb"].items(), key=lambda kv: -kv[1])[:4]
                ),
            ]
        )
    lines += _table(
        [
            "method",
            "wall s",
            "method's processes",
            "simulator",
            "PostgreSQL",
            "other jobs on the machine",
            "peak RSS by process (MB)",
        ],
        crows,
    )
    lines += [
        "",
        "*wall* includes interpreter start, imports and the text-check copy; the rates above use the timed "
        "part only. *other jobs* is CPU the machine spent outside this measurement (2 cores: anything above a "
        "few seconds means the figures are pessimistic).",
        "",
    ]

    lines += ["### Correctness", ""]
    krows = []
    for key in order:
        m = methods.get(key)
        if not m or not m.get("ok") or not m.get("correctness"):
            continue
        c = m["correctness"]
        if key.startswith("jinbao"):
            detail = (
                f"loaded {c['rows']:,} + quarantined {c['quarantined']:,} = {c['rows'] + c['quarantined']:,} "
                f"(source {src['rows']:,}); money loaded {c['money_total_loaded']} + quarantined "
                f"{c['money_total_quarantined']} vs source {src['money_total']}; truth match: {c['truth_ok']}; "
                f"reconciled: {c['reconciled']}"
            )
        else:
            mt = ", ".join(f"{k}: {v}" for k, v in c["money_types"].items())
            detail = (
                f"{c['rows']:,} rows; money total {c['money_total']} vs source {src['money_total']}; "
                f"column types {mt}; key type {c['key_type']}"
            )
        t = c["text"]
        krows.append(
            [
                LABELS.get(key, key),
                _correct(m),
                detail,
                f"{t['samples'] - t['mismatch_count']}/{t['samples']} names equal"
                + (f"; e.g. {t['mismatches'][0]}" if t["mismatches"] else ""),
            ]
        )
    lines += _table(["method", "correct", "rows and money", "Chinese text"], krows)
    lines.append("")

    inc = entry.get("incremental")
    if inc:
        lines += ["### Incremental run", ""]
        if inc.get("blocked"):
            lines += [f"**Blocked:** {inc['blocked']}", ""]
        if inc.get("ok"):
            lines += [
                f"{inc['changed_rows']:,} contribution rows ({inc['change_share']:.1%}) changed in a copy of the "
                f"source (employer_due + 1.00"
                + (
                    f", watermark `{inc['watermark']}` moved one day past the newest"
                    if inc.get("watermark")
                    else ""
                )
                + "), then "
                '`run_city(..., mode="incremental")` on the database of the full load:',
                "",
                *_table(
                    ["figure", "value"],
                    [
                        [
                            "whole city, incremental",
                            f"{inc['city_seconds']:.1f} s ({inc['share_of_full_city']:.1%} of the "
                            f"full load's {inc['full_city_seconds']:.1f} s; target ≤ 5%)",
                        ],
                        [
                            "contribution entity",
                            f"{inc['contribution_seconds']:.1f} s, {inc['contribution_rows_read']:,} "
                            f"rows read, {inc['contribution_updated']:,} updated",
                        ],
                        [
                            "changed rows found with their new amount",
                            f"{inc['check']['held']:,} held, {inc['check']['stale']} stale",
                        ],
                        ["peak RSS MB", _n(inc["peak_rss_mb"])],
                    ],
                ),
                "",
                "Per entity: "
                + "; ".join(
                    f"{n} {e['rows_read']:,} rows read in {e['seconds']:.1f} s"
                    for n, e in inc["entities"].items()
                    if e.get("seconds") is not None
                ),
                "",
            ]
        elif inc.get("error"):
            lines += [f"Failed: `{inc['error'][:500]}`", ""]

    notes = []
    for key in order:
        m = methods.get(key) or {}
        for n in m.get("notes", []):
            notes.append(f"- {LABELS.get(key, key)}: {n}")
        probe = m.get("reflection_probe")
        if probe and probe.get("reflection") != "ok":
            failures = dict.fromkeys(
                (v.get("queries") or ["?"])[-1][:260] + " → " + v["error"][:170]
                for v in probe.get("steps", {}).values()
                if not v["ok"]
            )
            notes.append(
                "- dlt: reflecting `dbo.ac43` (SQLAlchemy's mssql dialect, which reflects through `sys.*` catalog "
                "views only) fails on the simulator, so both dlt runs declare the table (legacy types) in a "
                "`MetaData` handed to `sql_table`. Has-table, columns, primary key, foreign keys and indexes all "
                "stop at: " + "; ".join(f"`{f}`" for f in failures)
            )
            probe = None
        if m.get("loader_files"):
            notes.append(f"- {LABELS.get(key, key)}: loader files {', '.join(m['loader_files'])}")
        if m.get("dtypes"):
            notes.append(
                f"- {LABELS.get(key, key)}: DataFrame dtypes "
                + ", ".join(f"{c} {t}" for c, t in m["dtypes"].items())
            )
        if m.get("copy"):
            notes.append(f"- {LABELS.get(key, key)}: {m['copy']}, dump {m.get('dump_mb')} MB")
    if notes:
        lines += ["### Notes", "", *dict.fromkeys(notes), ""]
    return lines


def _profile_section(p: dict) -> list[str]:
    if not p:
        return []
    lines = ["## Profile of jinbao (py-spy)", ""]
    if p.get("skipped"):
        return [*lines, f"Skipped: {p['skipped']}", ""]
    total = p["samples"] or 1
    stopped = f"; stopped after {p['stopped_after_s']} s" if p.get("stopped_after_s") else ""
    rate = p.get("contribution_rows_per_s_under_profiler")
    lines += [
        f"A separate jinbao run at scale `{p['scale']}` (driver {p.get('driver')}{stopped}) under `py-spy record "
        f"--rate {p['rate_hz']} --native --subprocesses --threads --idle`"
        + (f" ({_n(rate)} contribution rows/s under the profiler)" if rate else "")
        + ".",
        "",
        f"**CPU** ({p['samples']:,} samples ≈ {p['cpu_s']} CPU s in jinbao's processes; samples whose leaf frame is a "
        "wait are left out). By stage (root-most frame from `extractors/`, `transforms/`, `quality/` or Great "
        "Expectations, `loaders/`):",
        "",
        *_table(
            ["stage", "share of CPU samples"], [[k, f"{v / total:.1%}"] for k, v in p["by_stage"].items()]
        ),
        "",
        *_table(
            ["process / thread", "share of CPU samples"],
            [[k, f"{v / total:.1%}"] for k, v in p["by_thread"].items()],
        ),
        "",
        "Top functions by own CPU time (leaf frames, native included):",
        "",
        *_table(
            ["#", "function", "share"],
            [[i + 1, f"`{k}`", f"{v / total:.1%}"] for i, (k, v) in enumerate(p["top_self"][:10])],
        ),
        "",
        "Top functions by inclusive CPU time:",
        "",
        *_table(
            ["#", "function", "share"],
            [[i + 1, f"`{k}`", f"{v / total:.1%}"] for i, (k, v) in enumerate(p["top_inclusive"][:12])],
        ),
        "",
    ]
    w = p.get("runner_wall")
    if w and w.get("samples"):
        wt = w["samples"]
        lines += [
            f"**The runner's thread, wall clock** ({w['seconds']} s sampled, waits included: this thread is the "
            "pipeline's critical path; *(waiting)* means blocked on PostgreSQL, the extract queue, the expectations "
            "process or a lock):",
            "",
            *_table(
                ["stage", "share of the runner's time"],
                [[k, f"{v / wt:.1%}"] for k, v in w["by_stage"].items()],
            ),
            "",
            *_table(
                ["#", "function (inclusive)", "share"],
                [[i + 1, f"`{k}`", f"{v / wt:.1%}"] for i, (k, v) in enumerate(w["top_inclusive"][:12])],
            ),
            "",
        ]
    return lines


def write_markdown(doc: dict, path: Path) -> None:
    m = doc["machine"]
    lines = [
        "# jinbao benchmark",
        "",
        "Generated by `make bench` (`bench/`); do not edit by hand: the next run rewrites it. Method and caveats: "
        "`bench/README.md`. The same figures for scripts: `bench/results.json`.",
        "",
        f"- **Command:** `{doc['command']}` ({doc.get('elapsed_s', 0) / 60:.1f} min), {doc['generated_at']}",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM; {m['os']}, kernel {m['kernel']}; "
        f"load average at start {m['load_average_at_start']}",
        f"- **Software:** Python {m['python']}, PostgreSQL {m['postgresql']} (local, loopback), FreeTDS {m['freetds']} "
        f"(freebcp, ODBC), " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v),
        f"- **Code:** commit {m['git_commit']}" + (" with uncommitted changes" if m["git_dirty"] else ""),
        f"- **Source:** `{doc['table']}` of simulated {doc['city']}, served by the TDS simulator in its own process; "
        f"jinbao's driver: {doc['jinbao_driver']}; dlt's fastest configuration: {doc['dlt_fastest_config']}",
        "",
    ]
    for name, entry in doc["scales"].items():
        lines += _scale_section(name, entry)
    lines += _profile_section(doc.get("profile"))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
