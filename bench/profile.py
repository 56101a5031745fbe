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
    ("multiprocessing/queues.py", "validate"),  # pages pickled to the expectations process
    ("concurrent/futures/process.py", "validate"),
)
# A sample with one of these functions anywhere in its stack is a thread blocked, not computing.
_BLOCKING = {
    "PyThread_acquire_lock_timed",
    "Condition.wait",
    "Event.wait",
    "Connection.wait",
    "wait_conn",
    "poll",
    "select",
    "epoll_wait",
    "pthread_cond_wait",
    "pthread_cond_timedwait",
    "sem_wait",
    "sem_timedwait",
    "take_gil",
    "_recv_bytes",
    "_recv",
    "recv",
    "read",
    "__libc_read",
    "accept",
    "wait4",
    "waitpid",
    "sleep",
    "nanosleep",
    "clock_nanosleep",
}
# A sample whose leaf is one of these is a thread waiting (for PostgreSQL, the server, a queue, a lock).
_WAITING = re.compile(
    r"^(poll|ppoll|epoll_wait|select|pselect\d*|__?futex\w*|futex\w*|pthread_cond_\w*wait\w*|sem_\w*wait\w*|"
    r"__new_sem_wait\w*|do_futex_wait\w*|nanosleep|clock_nanosleep\w*|__GI___clock_nanosleep|recv\w*|__libc_recv\w*|"
    r"read|__libc_read|__GI___libc_read|accept\w*|wait4|waitpid|__libc_wait\w*|take_gil|PyCOND_TIMEDWAIT|"
    r"_recv|_recv_bytes|wait|acquire|select|poll|sleep|_wait_for_tstate_lock)( |$)"
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<where>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    return shutil.which("py-spy")


def command(out: Path) -> list[str]:
    exe = py_spy()
    return [
        exe,
        "record",
        "--rate",
        str(RATE_HZ),
        "--native",
        "--subprocesses",
        "--threads",
        "--idle",
        "--format",
        "raw",
        "-o",
        str(out),
        "--",
    ]


def _split(line: str) -> tuple[list[str], int]:
    stack, _, n = line.rstrip("\n").rpartition(" ")
    return stack.split(";"), int(n)


def _func(frame: str) -> str:
    return frame.split(" (", 1)[0]


def _key(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    where = m["where"]
    where = where.split("site-packages/")[-1]
    return f"{m['func']} ({where})"


def fold(raw: str) -> dict:
    """Aggregate py-spy's raw output (one ``frame;frame;... count`` line per distinct stack, idle included).

    Two views: *CPU* (samples whose leaf is not a wait), by stage, thread and function; and the
    *runner thread's wall clock* (every sample of the main thread, waits included), by stage and
    function: the runner's thread is the pipeline's critical path.
    """
    cpu = {"stage": Counter(), "thread": Counter(), "self": Counter(), "incl": Counter(), "n": 0}
    wall = {"stage": Counter(), "self": Counter(), "incl": Counter(), "n": 0}
    for line in raw.splitlines():
        if not line.strip():
            continue
        frames, n = _split(line)
        procs = [f for f in frames if f.startswith("process ")]
        threads = [f for f in frames if f.startswith("thread (")]
        code = [f for f in frames if not f.startswith(("process ", "thread ("))]
        if not code or any("py-spy" in p for p in procs):
            continue
        process = "validation child process" if len(procs) > 1 else "main process"
        tname = threads[-1].split(": ", 1)[1] if threads and ": " in threads[-1] else "?"
        if tname.startswith("bench-"):
            continue  # the bench's own helper threads
        group = (
            "main thread"
            if tname == "MainThread"
            else ("extract threads" if tname.startswith("extract") else "other threads")
        )
        stage = next((s for f in code for marker, s in STAGE_MARKERS if marker in f), None)
        if stage is None:
            stage = "validate" if process != "main process" else "other"
        leaf = _key(code[-1])
        waiting = bool(_WAITING.match(leaf)) or any(_func(f) in _BLOCKING for f in code)
        views = []
        if not waiting:
            cpu["thread"][f"{process}: {group}" if process == "main process" else process] += n
            views.append(cpu)
        if process == "main process" and group == "main thread":
            views.append(wall)
        for v in views:
            v["n"] += n
            v["stage"][(stage + " (waiting)") if waiting and v is wall else stage] += n
            v["self"][leaf] += n
            for k in {_key(f) for f in code}:
                v["incl"][k] += n
    return {
        "rate_hz": RATE_HZ,
        "samples": cpu["n"],
        "cpu_s": round(cpu["n"] / RATE_HZ, 1),
        "by_stage": dict(cpu["stage"].most_common()),
        "by_thread": dict(cpu["thread"].most_common()),
        "top_self": cpu["self"].most_common(15),
        "top_inclusive": [(k, n) for k, n in cpu["incl"].most_common(80) if not _is_frame_noise(k)][:25],
        "runner_wall": {
            "samples": wall["n"],
            "seconds": round(wall["n"] / RATE_HZ, 1),
            "by_stage": dict(wall["stage"].most_common()),
            "top_self": wall["self"].most_common(12),
            "top_inclusive": [(k, n) for k, n in wall["incl"].most_common(80) if not _is_frame_noise(k)][:20],
        },
    }


def _is_frame_noise(key: str) -> bool:
    """Frames every sample passes through (entry points, the runner loop, the import machinery's
    plumbing) say nothing about cost."""
    return any(
        s in key
        for s in (
            "<frozen importlib._bootstrap",
            "_handle_fromlist",
            "_gcd_import",
            "<module>",
            "_run_module_as_main",
            "_run_code",
            "main (bench/worker.py)",
            "run_jinbao",
            "Thread._bootstrap",
            "Thread.run",
            "_bootstrap_inner",
            "spawn_main",
            "_main (multiprocessing",
            "BaseProcess._bootstrap",
            "BaseProcess.run",
            "_process_worker",
            "timed_entity",
            "wrapper (bench/",
            "run_city (jinbao/runner.py)",
            "run_entity (jinbao/runner.py)",
            "0x",
        )
    )
