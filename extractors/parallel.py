"""Split a large table into key ranges and extract them concurrently, within the city's connection cap.

Only single-column integer keys are split (min/max, then equal-width ranges);
other tables stream on one connection. A bounded queue keeps memory flat: a
worker waits when the loader is behind.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa

from extractors.configuration import SourceEndpoint
from extractors.drivers import connect
from extractors.stream import KeyRange, RateLimit, Since, _back_off, _close, _quote, extract_entity
from jinbao.spec import EntitySpec, SourceSpec

_DONE = object()


def key_bounds(source: SourceSpec, entity: EntitySpec, endpoint: SourceEndpoint, since: Since | None = None):
    """(min, max) of the single key column, or None for an empty table."""
    key = _quote(entity.key[0])
    sql = f"SELECT MIN({key}), MAX({key}) FROM {_quote(entity.table)}"
    params: tuple = ()
    if since is not None:
        mark = "%s" if source.driver == "pymssql" else "?"
        sql += f" WHERE {_quote(since.column)} >= {mark}"
        params = (since.value,)
    attempt = 0
    while True:
        conn = None
        try:
            conn = connect(source, endpoint)
            cur = conn.cursor()
            cur.execute(sql, params) if params else cur.execute(sql)
            lo, hi = cur.fetchone()
            return None if lo is None else (lo, hi)
        except Exception as exc:
            attempt = _back_off(source, entity, exc, attempt)  # raises when not retryable or retries ran out
        finally:
            _close(conn)


def split_ranges(lo: int, hi: int, parts: int) -> list[KeyRange]:
    """``parts`` half-open ranges covering [lo, hi]: the first has no lower bound."""
    if parts <= 1 or hi - lo < parts:
        return [KeyRange(None, None)]
    step = (hi - lo + 1) // parts
    cuts = [lo - 1 + step * i for i in range(1, parts)]
    bounds = [None, *cuts, None]
    return [KeyRange(bounds[i], bounds[i + 1]) for i in range(parts)]


def splittable(entity: EntitySpec) -> bool:
    return len(entity.key) == 1 and entity.all_columns[entity.key[0]].base_type in (
        "int",
        "bigint",
        "smallint",
    )


def extract_parallel(
    source: SourceSpec,
    entity: EntitySpec,
    endpoint: SourceEndpoint,
    *,
    since: Since | None = None,
    workers: int | None = None,
    page_rows: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Batches of the whole table, from up to ``workers`` (default: the spec's cap) connections at once."""
    workers = min(workers or source.max_connections, source.max_connections)
    rate = RateLimit(source.max_rows_per_second)
    ranges = [KeyRange()]
    if workers > 1 and splittable(entity):
        bounds = key_bounds(source, entity, endpoint, since)
        if bounds is None:
            return
        ranges = split_ranges(int(bounds[0]), int(bounds[1]), workers)
    if len(ranges) == 1:
        yield from extract_entity(source, entity, endpoint, since=since, rate=rate, page_rows=page_rows)
        return

    out: queue.Queue = queue.Queue(maxsize=len(ranges))  # pages wait downstream, not here: memory stays flat
    stop = threading.Event()

    def work(r: KeyRange) -> None:
        try:
            for batch in extract_entity(
                source, entity, endpoint, key_range=r, since=since, rate=rate, page_rows=page_rows
            ):
                while not stop.is_set():
                    try:
                        out.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            out.put(_DONE)
        except BaseException as exc:  # surfaced to the consumer, which stops the others
            out.put(exc)

    threads = [
        threading.Thread(target=work, args=(r,), daemon=True, name=f"extract-{entity.table}-{i}")
        for i, r in enumerate(ranges)
    ]
    for t in threads:
        t.start()
    done = 0
    try:
        while done < len(threads):
            item = out.get()
            if item is _DONE:
                done += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        while True:  # unblock workers waiting on a full queue
            try:
                out.get_nowait()
            except queue.Empty:
                break
        for t in threads:
            t.join(timeout=5)
