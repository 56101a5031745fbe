"""What a load frees between entities goes back to the system, not only to malloc's free lists."""

from __future__ import annotations

import sys

import psutil
import pytest

from jinbao.memory import release_memory, tune_allocator


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_page_buffers_are_handed_back():
    assert tune_allocator() is True  # Debian's glibc
    # 200 MB of 100 KB buffers (below the mmap threshold: malloc keeps them in its heap), every
    # other one kept so the heap cannot simply shrink from the top
    buffers = [bytearray(100_000) for _ in range(2_000)]
    for b in buffers:
        b[::4096] = b"\x01" * len(b[::4096])  # touch every page
    kept = buffers[::2]
    del buffers
    held = _rss_mb()
    release_memory()
    assert held - _rss_mb() > 60  # about 100 MB comes back; without the trim nothing does
    assert len(kept) == 1_000
