"""Where per-partition work runs: this machine's process pools, or a Dask cluster.

The per-partition functions (tokenising a chunk of captions, examining a list of image
files) are pure and picklable; an engine only decides where they run. ``local`` (the
default) keeps each stage's own process pool. ``dask`` sends the same functions to a Dask
cluster: ``--scheduler tcp://HOST:8786`` joins a running one, ``--scheduler local`` starts
a ``LocalCluster`` of worker processes for the run. Results come back in submission
order, so the artifacts are byte-identical whichever engine ran them.

A build opens one engine for all its stages (:func:`use_engine`); stage code asks
:func:`current` and falls back to its own pool when no Dask engine is active.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from weaklabel.errors import WeaklabelError

log = logging.getLogger(__name__)

ENGINES = ("local", "dask")
"""Registered engine names."""

_current: DaskEngine | None = None


class DaskEngine:
    """A Dask ``distributed`` client plus, for ``scheduler='local'``, its LocalCluster."""

    name = "dask"

    def __init__(self, scheduler: str, *, workers: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise WeaklabelError(
                "--engine dask needs Dask; install it with: pip install 'weaklabel[dask]'"
            ) from None
        self.cluster: Any = None
        if scheduler == "local":
            # Worker processes, one thread each: Okt's JVM and Pillow want a process
            # apiece, like the local pool.
            # No statistical profiler in the workers: it calls sys._current_frames()
            # every 10 ms, and on CPython 3.11 that can deadlock with a thread being
            # started (the in-place reader starts its fetch threads per batch): a
            # purge on the cluster hung for good, every thread idle.
            import dask

            with dask.config.set({"distributed.worker.profile.enabled": False}):
                self.cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1,
                                            processes=True, dashboard_address=None)
            address = self.cluster.scheduler_address
        elif scheduler.startswith("tcp://") or scheduler.startswith("tls://"):
            address = scheduler
        else:
            raise WeaklabelError(
                f"--scheduler {scheduler!r}: use tcp://HOST:8786 for a running Dask "
                "scheduler or 'local' to start a LocalCluster")
        try:
            self.client = Client(address, timeout="10s")
        except OSError as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise WeaklabelError(
                f"cannot reach the Dask scheduler at {address} ({exc}); start it with "
                "`dask scheduler` or use --scheduler local") from None

    @property
    def workers(self) -> int:
        """Worker processes the scheduler knows now (at least 1)."""
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def imap(self, fn: Callable[..., Any], items: list[Any], *args: Any) -> Iterator[Any]:
        """``fn(item, *args)`` for every item on the cluster, yielded in item order."""
        if not items:
            return iter(())
        # pure=False: the same chunk submitted twice (a retry) must run again.
        futures = self.client.map(fn, items, *[[a] * len(items) for a in args], pure=False)

        def gen() -> Iterator[Any]:
            try:
                for fut in futures:
                    yield fut.result()
            finally:
                for fut in futures:
                    fut.cancel()

        return gen()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def current() -> DaskEngine | None:
    """The Dask engine of the running build, or None for this machine's pools."""
    return _current


@contextlib.contextmanager
def use_engine(name: str, *, scheduler: str = "local", workers: int = 2
               ) -> Iterator[DaskEngine | None]:
    """Make ``name`` the engine of every stage run inside the ``with`` block.

    Raises:
        WeaklabelError: an unknown engine name, or a scheduler that cannot be reached.
    """
    global _current
    if name not in ENGINES:
        raise WeaklabelError(f"unknown engine {name!r}; valid: {', '.join(ENGINES)}")
    if name == "local":
        yield None
        return
    eng = DaskEngine(scheduler, workers=workers)
    saved, _current = _current, eng
    try:
        yield eng
    finally:
        _current = saved
        eng.close()
