"""Where per-file work runs: in this process, a local process pool, or the engine's
cluster (:func:`weaklabel.engine.current`) in partitions of files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def map_part(items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` over one partition, on an engine's worker."""
    return [fn(x) for x in items]


def _unblock_sigint() -> None:
    import signal

    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _start_pool(workers: int) -> Any:
    """A process pool whose start cannot swallow a Ctrl-C.

    A SIGINT that lands while the main thread forks is raised inside CPython's at-fork
    callbacks, which only print it ("Exception ignored in _releaseLock"): the run goes
    on to the end as if no key was pressed. So SIGINT is blocked while the workers are
    forked, and a Ctrl-C pressed meanwhile is raised here once they are; each worker
    unblocks it first, and behaves as before.
    """
    import multiprocessing
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if main else None
    try:
        return multiprocessing.get_context().Pool(workers, initializer=_unblock_sigint)
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class WorkerPool:
    """``workers`` processes, or plain in-process calls for one worker; started on first
    use, so a run with nothing to read starts no process."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool: Any = None

    def imap(self, fn: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        """``fn`` over ``items``, results in order."""
        from weaklabel.engine import current

        eng = current()
        if eng is not None and items:  # the Dask engine: chunks of files on the cluster
            size = max(1, min(256, -(-len(items) // (eng.workers * 4))))
            parts = [items[i : i + size] for i in range(0, len(items), size)]
            return (r for part in eng.imap(map_part, parts, fn) for r in part)
        if self.workers == 1 or len(items) < 8:
            return map(fn, items)
        if self._pool is None:
            self._pool = _start_pool(self.workers)
        chunk = max(1, min(64, len(items) // (self.workers * 8)))
        return self._pool.imap(fn, items, chunksize=chunk)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
