"""Pausing Python's cyclic garbage collector around work that builds many objects and no
cycles (a parse, the extraction passes, a save): shared by the parser and the extractors."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]

_GC_LOCK = threading.Lock()
_GC_PAUSES = 0  # passes running now (threads of `serve` may run several at once)
_GC_WAS_ENABLED = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """A parse and the passes make millions of small objects and almost no reference cycles:
    the cyclic collector, run every 700 allocations, took about a third of their time on a long
    script (walking the objects being built, for nothing; reference counting still frees them).
    It is paused while they run and resumed (as it was) when the last pause ends, whatever
    threads (`serve`) overlap."""
    global _GC_PAUSES, _GC_WAS_ENABLED
    with _GC_LOCK:
        if _GC_PAUSES == 0:
            _GC_WAS_ENABLED = gc.isenabled()
            gc.disable()
        _GC_PAUSES += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES -= 1
            if _GC_PAUSES == 0 and _GC_WAS_ENABLED:
                gc.enable()
