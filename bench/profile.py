"""Where jinbao's CPU goes: py-spy samples of a jinbao run (all threads, the validation child process,
native frames), folded into stages, top functions by own time and by inclusive time."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

RATE_HZ = 50

# The root-most frame from one of jinbao's stage packages names the stage of a sample.
STAGE_MARKERS = (
    ("extractors/", "extract"),
    ("transforms/", "transform"),
    ("quality/", "validate"),
    ("great_expectations/", "validate"),
    ("loaders/", "load"),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<where>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    return shutil.which("py-spy")


def command(out: Path) -> list[str]:
    exe = py_spy()
    return [exe, "record", "--rate", str(RATE_HZ), "--native", "--subprocesses", "--threads",
            "--format", "raw", "-o", str(out), "--"]


def _split(line: str) -> tuple[list[str], int]:
    stack, _, n = line.rstrip("\n").rpartition(" ")
    return stack.split(";"), int(n)


def _key(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    where = m["where"]
    where = where.split("site-packages/")[-1]
    return f"{m['func']} ({where})"


def fold(raw: str, skip_prefix: str = "bench/") -> dict:
    """Aggregate py-spy's raw output (one ``frame;frame;... count`` line per distinct stack)."""
    total = 0
    by_stage: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in raw.splitlines():
        if not line.strip():
            continue
        frames, n = _split(line)
        procs = [f for f in frames if f.startswith("process ")]
        threads = [f for f in frames if f.startswith("thread (")]
        code = [f for f in frames if not f.startswith(("process ", "thread ("))]
        if any("py-spy" in p for p in procs):
            continue
        total += n
        process = "validation child process" if len(procs) > 1 else "main process"
        tname = threads[-1].split(": ", 1)[1] if threads and ": " in threads[-1] else "?"
        group = "main thread" if tname == "MainThread" else ("extract threads" if tname.startswith("extract") else "other threads")
        by_thread[f"{process}: {group}" if process == "main process" else process] += n
        stage = "other"
        for f in code:
            hit = next((s for marker, s in STAGE_MARKERS if marker in f), None)
            if hit:
                stage = hit
                break
        if stage == "other" and process != "main process":
            stage = "validate"
        by_stage[stage] += n
        if code:
            self_time[_key(code[-1])] += n
        for k in {_key(f) for f in code}:
            inclusive[k] += n
    return {
        "samples": total,
        "rate_hz": RATE_HZ,
        "cpu_s": round(total / RATE_HZ, 1),
        "by_stage": dict(by_stage.most_common()),
        "by_thread": dict(by_thread.most_common()),
        "top_self": self_time.most_common(15),
        "top_inclusive": [(k, n) for k, n in inclusive.most_common(60) if not _is_frame_noise(k)][:25],
    }


def _is_frame_noise(key: str) -> bool:
    """Frames every sample passes through (entry points, the runner loop) say nothing about cost."""
    return any(s in key for s in ("<module>", "_run_module_as_main", "_run_code", "main (bench/worker.py)",
                                  "run_jinbao", "Thread._bootstrap", "Thread.run", "_bootstrap_inner",
                                  "spawn_main", "_main (multiprocessing", "BaseProcess._bootstrap",
                                  "BaseProcess.run", "_process_worker", "timed_entity", "wrapper (bench/",
                                  "run_city (jinbao/runner.py)", "run_entity (jinbao/runner.py)", "0x"))
