"""The source side: a generated city (daqing) at a given scale, its facts read straight from DuckDB, and the
simulator serving it from its own process (so its CPU time is measured apart from the clients')."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import psutil

from bench.config import CACHE_DIR, CITY, ENTITY, ROOT, SEED, TEXT_SAMPLES, Scale


def _generator_fingerprint() -> str:
    """Hash of the generator's sources: a cached city is reused only while they are unchanged."""
    h = hashlib.sha256()
    for path in sorted((ROOT / "fixtures" / "generator").glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:10]


def ensure_city(scale: Scale, log=print) -> Path:
    """Generate the bench city at ``scale`` once (cached under .jinbao/bench) and return the DuckDB file."""
    from fixtures.generator import generate_city

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"{CITY}-{scale.persons}-{SEED}-{_generator_fingerprint()}.duckdb"
    if path.exists():
        return path
    for stale in CACHE_DIR.glob(f"{CITY}-{scale.persons}-{SEED}-*.duckdb*"):
        stale.unlink()
    tmp = path.with_name(path.stem + ".tmp.duckdb")
    started = time.perf_counter()
    generate_city(CITY, tmp, persons=scale.persons, seed=SEED)
    tmp.rename(path)
    log(f"generated {path.name} in {time.perf_counter() - started:.1f} s")
    return path


@dataclass
class SourceFacts:
    """What the source holds, read from the DuckDB file itself (never through TDS)."""

    table: str  # dbo.T_PAYMENT
    columns: list[str]  # the spec's columns of the entity, in select order
    sql_types: dict[str, str]  # legacy SQL type per column (from the spec)
    rows: int
    money: dict[str, Decimal]  # exact sum per money column
    key_sum: Decimal  # sum of the BIGINT key: catches keys > 2**53 that went through a float
    key_max: int
    city_rows: dict[str, int]  # source rows per entity (whole-city figures)
    truth_rows: int | None  # rows jinbao must load (truth.contribution), when the generator wrote a truth
    truth_money: Decimal | None
    text_samples: list[dict] = field(default_factory=list)  # {person_no, source_name, truth_name}

    @property
    def money_total(self) -> Decimal:
        return sum(self.money.values(), Decimal(0))

    def to_json(self) -> dict:
        return {
            "table": self.table,
            "columns": self.columns,
            "rows": self.rows,
            "money": {k: str(v) for k, v in self.money.items()},
            "money_total": str(self.money_total),
            "key_sum": str(self.key_sum),
            "key_max": self.key_max,
            "city_rows": self.city_rows,
            "truth_rows": self.truth_rows,
            "truth_money": None if self.truth_money is None else str(self.truth_money),
            "text_samples": self.text_samples,
        }


def _q(ident: str) -> str:
    return ".".join(f'"{p}"' for p in ident.split("."))


def _is_gbk_only(ch: str) -> bool:
    try:
        ch.encode("gb2312")
        return False
    except UnicodeEncodeError:
        try:
            ch.encode("gbk")
            return True
        except UnicodeEncodeError:
            return False


def pick_text_samples(rows: list[tuple[str, str, str | None]], n: int = TEXT_SAMPLES) -> list[dict]:
    """Persons whose names test the text path: GBK-only and private-use characters first, then a spread.

    ``rows`` are (person_no, source name, unified name or None) in a stable order.
    """

    def hard(name: str) -> bool:
        return any(_is_gbk_only(c) or "\ue000" <= c <= "\uf8ff" or c == "\u3000" for c in name)

    chosen = [r for r in rows if r[1] and hard(r[1])][: n // 2]
    taken = {r[0] for r in chosen}
    spread = [r for r in rows if r[0] not in taken and r[1] and any(ord(c) > 127 for c in r[1])]
    step = max(1, len(spread) // max(1, n - len(chosen)))
    chosen += spread[::step][: n - len(chosen)]
    return [{"person_no": p.strip(), "source_name": s, "truth_name": t} for p, s, t in chosen]


def source_facts(db: Path, spec) -> SourceFacts:
    """Counts, exact money sums, key checksum and text samples of the source, for every method's checks."""
    from transforms.normalize import money_columns

    entity = spec.entities[ENTITY]
    columns = list(entity.all_columns)
    sql_types = {c: col.type for c, col in entity.all_columns.items()}
    money_src = [src for src, col in entity.columns.items() if col.to in money_columns(ENTITY)]
    key = entity.key[0]
    con = duckdb.connect(str(db), read_only=True)
    try:
        sums = ", ".join(f"CAST(sum({_q(c)}) AS DECIMAL(38,4))" for c in money_src)
        row = con.execute(
            f"SELECT count(*), CAST(sum({_q(key)}) AS HUGEINT), max({_q(key)}), {sums} FROM {_q(entity.table)}"
        ).fetchone()
        city_rows = {
            name: con.execute(f"SELECT count(*) FROM {_q(e.table)}").fetchone()[0]
            for name, e in spec.ordered_entities()
        }
        tables = {
            r[0]
            for r in con.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
            ).fetchall()
        }
        truth_rows = truth_money = None
        if "truth.contribution" in tables:
            unified = [entity.columns[c].to for c in money_src]
            expr = " + ".join(f"coalesce(sum({_q(u)}), 0)" for u in unified)
            truth_rows, truth_money = con.execute(
                f"SELECT count(*), CAST({expr} AS DECIMAL(38,2)) FROM truth.contribution"
            ).fetchone()
        person = spec.entities["person"]
        pno, pname = person.source_for("source_person_no"), person.source_for("name")
        if "truth.person_xref" in tables:
            people = con.execute(
                f"SELECT s.{_q(pno)}, s.{_q(pname)}, t.name FROM {_q(person.table)} s "
                f"JOIN truth.person_xref t ON t.source_person_no = trim(s.{_q(pno)}) ORDER BY s.{_q(pno)}"
            ).fetchall()
        else:
            people = [
                (p, n, None)
                for p, n in con.execute(
                    f"SELECT {_q(pno)}, {_q(pname)} FROM {_q(person.table)} ORDER BY 1"
                ).fetchall()
            ]
    finally:
        con.close()
    return SourceFacts(
        table=entity.table,
        columns=columns,
        sql_types=sql_types,
        rows=int(row[0]),
        money={c: Decimal(v or 0) for c, v in zip(money_src, row[3:], strict=True)},
        key_sum=Decimal(int(row[1])),
        key_max=int(row[2]),
        city_rows=city_rows,
        truth_rows=None if truth_rows is None else int(truth_rows),
        truth_money=None if truth_money is None else Decimal(truth_money),
        text_samples=pick_text_samples(people),
    )


def change_rows(db: Path, out: Path, spec, share: float) -> dict:
    """Copy the source and change ``share`` of the contribution rows (an amount, plus the watermark if any).

    Returns what changed: the keys and the new total, so the incremental run can be checked.
    """
    entity = spec.entities[ENTITY]
    shutil.copyfile(db, out)
    key = entity.key[0]
    due = entity.source_for("employer_due")
    con = duckdb.connect(str(out))
    try:
        n = con.execute(f"SELECT count(*) FROM {_q(entity.table)}").fetchone()[0]
        every = max(1, round(1 / share))
        where = f"({_q(key)} % {every}) = 7"
        sets = [f"{_q(due)} = {_q(due)} + 1"]
        if entity.watermark:
            bump = con.execute(f"SELECT max({_q(entity.watermark)}) FROM {_q(entity.table)}").fetchone()[0]
            con.execute("SET VARIABLE bench_stamp = ?::TIMESTAMP + INTERVAL 1 DAY", [bump])
            sets.append(f"{_q(entity.watermark)} = getvariable('bench_stamp')")
        keys = [
            r[0] for r in con.execute(f"SELECT {_q(key)} FROM {_q(entity.table)} WHERE {where}").fetchall()
        ]
        con.execute(f"UPDATE {_q(entity.table)} SET {', '.join(sets)} WHERE {where}")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return {"rows": n, "changed": len(keys), "keys": keys, "watermark": entity.watermark, "column": due}


def die_with_parent() -> None:
    """In a child, before exec: the kernel sends it SIGTERM when the bench process dies (Linux)."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class SimServer:
    """The TDS simulator in its own process; CPU seconds and RSS read with psutil."""

    def __init__(self, db: Path, extra_args: list[str] | None = None):
        self.db = db
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.ps: psutil.Process | None = None

    def __enter__(self) -> SimServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fixtures.tds", str(self.db), "--port", "0", *self.extra_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on [\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.__exit__()
            raise RuntimeError(f"the simulator did not start on {self.db}")
        self.ps = psutil.Process(self.proc.pid)
        return self

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
