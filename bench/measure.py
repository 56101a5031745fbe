"""Run one method in its own process and watch it: peak RSS and CPU of its process tree, the
simulator's CPU, the PostgreSQL backends' CPU, and whatever else kept the machine busy meanwhile."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.config import ROOT, SAMPLE_EVERY_S, WORKER_TIMEOUT_S
from bench.source import die_with_parent


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


@dataclass
class Watch:
    """What the sampler saw while a method ran."""

    wall_s: float = 0.0
    peak_rss_mb: float = 0.0  # sum of RSS over the method's process tree, at its highest
    peak_rss_by_process_mb: dict[str, float] = field(default_factory=dict)
    client_cpu_s: float = 0.0  # the method's processes (and their children)
    server_cpu_s: float = 0.0  # the TDS simulator
    postgres_cpu_s: float = 0.0  # PostgreSQL backends serving the method's database
    machine_busy_s: float = 0.0  # all CPU time used on the machine meanwhile
    timed_out: bool = False
    returncode: int | None = None
    progress: dict | None = None  # the worker's last progress report, when it had to be stopped

    @property
    def other_cpu_s(self) -> float:
        """CPU the machine spent on things that are not this measurement (other jobs sharing it)."""
        return max(0.0, self.machine_busy_s - self.client_cpu_s - self.server_cpu_s - self.postgres_cpu_s)

    def to_json(self) -> dict:
        out = {
            k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items() if k != "progress"
        }
        out["peak_rss_by_process_mb"] = {k: round(v, 1) for k, v in self.peak_rss_by_process_mb.items()}
        out["other_cpu_s"] = round(self.other_cpu_s, 3)
        return out


def _label(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return "?"
    if not cmd:
        return p.name()
    exe = Path(cmd[0]).name
    if exe.startswith("python"):
        if "multiprocessing" in " ".join(cmd):
            return "python (child process)"
        return "python " + " ".join(a for a in cmd[1:3] if not a.startswith("{"))[:40]
    return exe


class _Sampler(threading.Thread):
    def __init__(self, root: psutil.Process, server: psutil.Process | None, pg_db: str | None):
        super().__init__(daemon=True)
        self.root, self.server, self.pg_db = root, server, pg_db
        self.stop = threading.Event()
        self.watch = Watch()
        self.cpu_seen: dict[int, float] = {}  # pid -> last CPU seconds (processes that ended keep theirs)
        self.pg_seen: dict[int, float] = {}  # backend pid -> CPU seconds (the database is the method's own)
        self.pg_procs: list[psutil.Process] = []
        self.pg_listed = 0.0

    def _pg_backends(self) -> list[psutil.Process]:
        """The database's backends, listed again once a second (listing every process is not cheap)."""
        if not self.pg_db:
            return []
        if time.monotonic() - self.pg_listed < 1.0:
            return self.pg_procs
        self.pg_listed = time.monotonic()
        out = []
        for p in psutil.process_iter(["name", "cmdline"]):
            cmd = p.info.get("cmdline") or []
            if cmd and cmd[0].startswith("postgres:") and f" {self.pg_db} " in cmd[0] + " ":
                out.append(p)
        self.pg_procs = out
        return out

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0.0
        for p in procs:
            try:
                rss = p.memory_info().rss / 2**20
                self.cpu_seen[p.pid] = _cpu(p)
            except psutil.Error:
                continue
            total += rss
            label = _label(p)
            if rss > self.watch.peak_rss_by_process_mb.get(label, 0.0):
                self.watch.peak_rss_by_process_mb[label] = rss
        self.watch.peak_rss_mb = max(self.watch.peak_rss_mb, total)
        for p in self._pg_backends():
            try:
                c = _cpu(p)
            except psutil.Error:
                continue
            self.pg_seen[p.pid] = c

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY_S):
            self.sample()


def _machine_busy() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def run_worker(
    method: str,
    args: dict,
    *,
    server: psutil.Process | None = None,
    pg_db: str | None = None,
    timeout_s: float = WORKER_TIMEOUT_S,
    wrap: list[str] | None = None,
) -> tuple[dict | None, Watch, str]:
    """Run ``python -m bench.worker METHOD`` (optionally under ``wrap``, e.g. py-spy); return its JSON result,
    the watch, and the tail of its stderr."""
    with tempfile.TemporaryDirectory(prefix="jbbench-") as tmp:
        out = Path(tmp) / "result.json"
        err = Path(tmp) / "stderr.txt"
        progress = Path(tmp) / "progress.json"
        payload = json.dumps({**args, "result_path": str(out), "progress_path": str(progress)})
        cmd = [*(wrap or []), sys.executable, "-m", "bench.worker", method, payload]
        server_cpu0 = _cpu(server) if server else 0.0
        busy0 = _machine_busy()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        with open(err, "wb") as errf:
            proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=errf,
                env={**os.environ},
                preexec_fn=die_with_parent,
            )
            root = psutil.Process(proc.pid)
            sampler = _Sampler(root, server, pg_db)
            sampler.sample()
            sampler.start()
            watch = sampler.watch
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                watch.timed_out = True
                watch.progress = json.loads(progress.read_text()) if progress.exists() else None
                _kill_tree(root, spare_root=bool(wrap))  # a profiler writes its samples when its target ends
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    _kill_tree(root)
                    proc.wait()
            sampler.stop.set()
            sampler.join()
        watch.wall_s = time.perf_counter() - started
        watch.returncode = proc.returncode
        # waited-for descendants' CPU is exact; the sampled sum covers processes nobody waited for
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        waited = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        watch.client_cpu_s = max(waited, sum(sampler.cpu_seen.values()))
        watch.server_cpu_s = (_cpu(server) - server_cpu0) if server else 0.0
        watch.postgres_cpu_s = sum(sampler.pg_seen.values())
        watch.machine_busy_s = _machine_busy() - busy0
        result = json.loads(out.read_text()) if out.exists() else None
        tail = err.read_text(errors="replace")[-4000:]
    return result, watch, tail


def _kill_tree(root: psutil.Process, spare_root: bool = False) -> None:
    try:
        procs = [*root.children(recursive=True), *([] if spare_root else [root])]
    except psutil.Error:
        return
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
