"""Process pools for the per-shape CPU work of the data stages (prepare, sample).

Workers fork from a fork server that imported the data layer once: quick to start (no import per
worker), and nothing inherited from the caller's threads (torch, libigl). Each worker runs one thread
(libigl would start one per core in every process otherwise; it reads IGL_NUM_THREADS on first use).
Results are pure functions of their inputs, so the worker count never changes them.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from shd.errors import InputError


def n_workers(workers: int, where: str) -> int:
    """The `workers` option: an integer >= 0, 0 meaning every core."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InputError(where, f"got {workers!r}, expected an integer >= 0 (0: every core)")
    return workers or os.cpu_count() or 1


def _one_thread() -> None:
    os.environ["IGL_NUM_THREADS"] = "1"
    os.environ["OMP_NUM_THREADS"] = "1"


def worker_pool(workers: int, preload: list[str]) -> ProcessPoolExecutor:
    """`workers` single-threaded processes with the modules in `preload` imported once, up front (one
    that is not installed is skipped there and fails, clearly, where a worker uses it)."""
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(preload)
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_one_thread)
