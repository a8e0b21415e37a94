"""Where per-file work runs: in this process, a local process pool, or the engine's
cluster (:func:`weaklabel.engine.current`) in partitions of files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def map_part(items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` over one partition, on an engine's worker."""
    return [fn(x) for x in items]


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
            import multiprocessing

            self._pool = multiprocessing.get_context().Pool(self.workers)
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
