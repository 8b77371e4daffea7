"""An order-preserving process pool for the converters: ``ordered_map(function, items, N)``.

Decoding radar files, video clips or whole shards is independent per item and CPU-bound, so
the converters map their per-item function over a pool of ``N`` processes
(:class:`concurrent.futures.ProcessPoolExecutor`). Results come back in the order of
``items``, so the output of a parallel run is byte for byte the output of ``N = 1``.

Memory stays flat in the number of items: at most ``max_in_flight`` items are submitted
ahead of the one being consumed (a plain ``Pool.imap`` would queue every item and could
pile up results when the consumer is slower than the workers). ``items`` may be a
generator; it is read lazily.

Workers are started with ``spawn`` (never ``fork``: the parent may already run TensorFlow's
threads), so ``function`` must be picklable: a module-level function, a
:func:`functools.partial` of one, or an instance of a module-level class with ``__call__``.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from predrnn_tf.errors import ConfigError

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_WORKERS = 1024
START_METHOD = "spawn"


def check_num_workers(num_workers: int) -> int:
    """``num_workers`` if it is an int in [0, MAX_WORKERS]; 0 means one per CPU core."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or not (
            0 <= num_workers <= MAX_WORKERS):
        raise ConfigError(f"--num_workers must be an integer in [0, {MAX_WORKERS}] (0 = one per "
                          f"CPU core), got {num_workers!r}")
    return num_workers or (os.cpu_count() or 1)


def ordered_map(function: Callable[[Item], Result], items: Iterable[Item], num_workers: int = 1,
                max_in_flight: int = 0) -> Iterator[Result]:
    """Yields ``function(item)`` for every item, in order, computed by ``num_workers`` processes.

    Args:
      function: picklable per-item function (runs in the worker processes).
      items: the inputs, read lazily.
      num_workers: processes; 1 runs in this process without a pool; 0 = one per core.
      max_in_flight: items submitted ahead of the one consumed (default ``2 * num_workers``).

    Yields:
      The results in the order of ``items``. The first error raised by ``function`` is
      raised here; the items not yet started are cancelled.
    """
    num_workers = check_num_workers(num_workers)
    if num_workers == 1:
        yield from map(function, items)
        return
    limit = max(max_in_flight or 2 * num_workers, 1)
    context = multiprocessing.get_context(START_METHOD)
    pool = concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context)
    pending: collections.deque[concurrent.futures.Future] = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)

