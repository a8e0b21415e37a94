"""Where per-file work runs: in this process, a local process pool, or the engine's
cluster (:func:`weaklabel.engine.current`) in partitions of files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def map_part(items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` over one partition, on an engine's worker."""
    return [fn(x) for x in items]


class _HeldCtrlC:
    """A SIGINT handler that only notes the signal, to be handed on to ``previous``."""

    def __init__(self, previous: Callable[..., Any]) -> None:
        self.previous = previous
        self.caught_in = 0  # the pid: a worker forked after the parent's Ctrl-C has a copy

    def __call__(self, signum: int, frame: Any) -> None:
        import os

        self.caught_in = os.getpid()

    def caught(self) -> bool:
        import os

        return self.caught_in == os.getpid()


def _worker_start() -> None:
    """A forked worker's SIGINT handler is the parent's own again (a Ctrl-C it got
    meanwhile is raised now); a spawned one never had another."""
    import signal

    held = signal.getsignal(signal.SIGINT)
    if isinstance(held, _HeldCtrlC):
        signal.signal(signal.SIGINT, held.previous)
        if held.caught():
            held.previous(signal.SIGINT, None)


def _start_pool(workers: int) -> Any:
    """A process pool whose start cannot swallow a Ctrl-C.

    Python raises a Ctrl-C in the main thread at its next bytecode, wherever the C
    handler ran: during fork() that is inside CPython's at-fork callbacks, which only
    print it ("Exception ignored in _releaseLock"), and the run went on to the end as if
    no key was pressed. Blocking SIGINT in the forking thread does not help once the
    process has other threads (Okt's JVM, the reader's fetch threads): the kernel hands
    the signal to one of them. So while the workers are forked the Python handler only
    notes a Ctrl-C, and the pool is terminated and the Ctrl-C raised here once they are.
    """
    import multiprocessing
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT)
    held = None  # only the main thread may set handlers; SIG_IGN/SIG_DFL raise nothing
    if threading.current_thread() is threading.main_thread() and callable(previous):
        held = _HeldCtrlC(previous)
        signal.signal(signal.SIGINT, held)
    pool = None
    try:
        pool = multiprocessing.get_context().Pool(workers, initializer=_worker_start)
        return pool
    finally:
        if held is not None:
            signal.signal(signal.SIGINT, held.previous)
            if held.caught():
                try:
                    held.previous(signal.SIGINT, None)
                except BaseException:
                    if pool is not None:
                        pool.terminate()
                    raise


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
        """Wait for the workers to finish their tasks, then end them: the normal end."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def terminate(self) -> None:
        """End the workers now, their tasks unfinished: the end on an error or a Ctrl-C,
        which the workers got too and died of, so waiting for their results
        (:meth:`close`) would wait for ever, the workspace lock held."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is None:
            self.close()
        else:
            self.terminate()
