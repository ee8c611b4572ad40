"""Large numpy loops split in two halves, the second on a helper thread when it is free.

On the 2-core machines this program is written for, ONNX Runtime keeps both cores busy while a
network runs, but the preprocessing around it (windowing a 5-Mpx radiograph, its block means)
ran on one core. numpy's loops release the GIL, so two halves of the image can run at once.

The split never changes a result: each half is computed exactly as the whole would compute
that part (callers split at block boundaries), so the output is the same bit for bit whether
the helper ran it or not. The helper is taken only when free, and not at all inside
:func:`off` (what a batch uses: its streams already keep both cores busy, and a third thread
made 120 files 3 % slower).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

_HELPER: ThreadPoolExecutor | None = None
_FREE = threading.Lock()  # held while the helper runs a half
_MADE = threading.Lock()
enabled = True  # tests and benchmarks compare with the one-thread path
# Pixels from which an image loop is worth splitting: below, starting the second half costs
# more than it saves.
SPLIT_FROM = 1 << 20
_LOCAL = threading.local()


@contextmanager
def off() -> Iterator[None]:
    """In this thread, both halves run here (for work that already has the cores busy)."""
    _LOCAL.off = getattr(_LOCAL, "off", 0) + 1
    try:
        yield
    finally:
        _LOCAL.off -= 1


def _forget_in_child() -> None:
    """A forked child (a data-loader or rendering worker) has no helper thread, only the
    parent's executor object: submitting to it would wait forever. Start afresh there."""
    global _HELPER, _FREE, _MADE
    _HELPER, _FREE, _MADE = None, threading.Lock(), threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _helper() -> ThreadPoolExecutor:
    global _HELPER
    with _MADE:
        if _HELPER is None:
            _HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="valvereader-half")
        return _HELPER


def run_halves(first: Callable[[], None], second: Callable[[], None]) -> bool:
    """Run ``first`` here and ``second`` on the helper thread if it is free, else both here
    (``first`` then ``second``). Both write their own part of an output; exceptions of either
    are raised here. Returns whether the helper was used."""
    if not enabled or getattr(_LOCAL, "off", 0) > 0 or not _FREE.acquire(blocking=False):
        first()
        second()
        return False
    try:
        future = _helper().submit(second)
        try:
            first()
        finally:
            future.result()  # waits even when ``first`` failed, so no half outlives the call
    finally:
        _FREE.release()
    return True


def split(length: int, pixels: int, work: Callable[[int, int], None], unit: int = 1) -> bool:
    """``work(start, stop)`` over ``0..length``: in two halves at once (:func:`run_halves`)
    when the job covers at least ``SPLIT_FROM`` pixels, cut at a multiple of ``unit`` near the
    middle (a caller's block or chunk, so that each half computes exactly what the whole would);
    else ``work(0, length)`` here. Returns whether the helper was used."""
    cut = (length // 2) // unit * unit
    if pixels < SPLIT_FROM or cut == 0:
        work(0, length)
        return False
    return run_halves(lambda: work(0, cut), lambda: work(cut, length))
