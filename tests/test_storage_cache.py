"""The in-place object cache: bounded by bytes, LRU, never serving a torn entry, safe
with several worker processes writing into one folder."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
from pathlib import Path

from weaklabel.storage_inplace import TRAILER, ObjectCache


def body(i: int, size: int = 1000) -> bytes:
    return bytes([i % 251]) * (size + i % 17)


def held(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if not p.name.startswith("."))


def test_entries_round_trip_and_the_least_recently_used_goes_first(tmp_path: Path) -> None:
    limit = 3 * (1000 + TRAILER) + 40
    c = ObjectCache(tmp_path, limit)
    ids = [ObjectCache.ident("s3://b/r", f"k{i}", 1000, "e") for i in range(4)]
    for i in range(3):
        assert c.put(ids[i], body(i, 1000 - i % 17))
        os.utime(tmp_path / ids[i], ns=(10**18 + i, 10**18 + i))  # a clear order of use
    assert c.get(ids[0], 1000) == body(0, 1000)  # touched: now the most recent
    assert c.put(ids[3], body(3, 1000 - 3))
    assert c.get(ids[1], 1000) is None  # the least recently used was evicted
    assert c.get(ids[0], 1000) == body(0, 1000)
    assert c.get(ids[2], 1000) == body(2, 1000 - 2)
    assert c.total() == held(tmp_path) <= limit
    # Another version of an object is another entry; a body over the bound is not kept.
    assert ObjectCache.ident("s3://b/r", "k0", 1000, "e2") != ids[0]
    assert not c.put(ids[1], b"x" * limit)
    assert c.get(ids[1], limit) is None


def test_a_torn_or_altered_entry_is_removed_not_served(tmp_path: Path) -> None:
    c = ObjectCache(tmp_path, 1 << 20)
    a, b, d = (ObjectCache.ident("s3://b/r", k, 500, "e") for k in "abd")
    for ident in (a, b, d):
        c.put(ident, b"y" * 500)
    with open(tmp_path / a, "r+b") as f:  # a torn write: the tail missing
        f.truncate(300)
    raw = bytearray((tmp_path / b).read_bytes())
    raw[10] ^= 0xFF  # one flipped byte
    (tmp_path / b).write_bytes(bytes(raw))
    assert c.get(a, 500) is None and not (tmp_path / a).exists()
    assert c.get(b, 500) is None and not (tmp_path / b).exists()
    assert c.get(d, 499) is None  # the listing's size disagrees: not this version
    # A writer killed mid-put leaves a .part file: never served, swept by the next put.
    (tmp_path / f".{a}.part").write_bytes(b"y" * 200)
    assert c.get(a, 200) is None
    c.put(a, b"z" * 500)
    assert not (tmp_path / f".{a}.part").exists()
    assert c.get(a, 500) == b"z" * 500


def _writer(folder: str, limit: int, start: int, n: int) -> None:
    c = ObjectCache(folder, limit)
    for i in range(start, start + n):
        ident = ObjectCache.ident("s3://b/r", f"k{i}", 0, "e")
        c.put(ident, body(i))
        got = c.get(ident, len(body(i)))
        assert got is None or got == body(i)


def test_worker_processes_sharing_the_folder_never_exceed_the_bound(tmp_path: Path) -> None:
    limit = 12 * (1000 + TRAILER)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), limit, k * 1000, 150))
             for k in range(3)]
    for p in procs:
        p.start()
    totals = []
    try:
        while any(p.is_alive() for p in procs):
            # The bound is a property of every state the lock lets others see.
            with open(tmp_path / ".lock", "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                totals.append(held(tmp_path))
                fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        for p in procs:
            p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert totals and max(totals) <= limit
    assert 0 < held(tmp_path) <= limit
    # Every entry left is whole.
    c = ObjectCache(tmp_path, limit)
    names = {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")}
    found = 0
    for k in range(3):
        for i in range(k * 1000, k * 1000 + 150):
            ident = ObjectCache.ident("s3://b/r", f"k{i}", 0, "e")
            if ident in names:
                assert c.get(ident, len(body(i))) == body(i)
                found += 1
    assert found == len(names) > 0
