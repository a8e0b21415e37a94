"""The exact funnel's batch digests: the same digests as one file at a time, from raw
path keys, and never read through a folder swapped for a symlink after the walk."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from weaklabel.images import digests
from weaklabel.images.digests import (
    PARTIAL_BLOCK,
    digest_keys,
    full_digest,
    partial_digest,
    partial_of_body,
    read_digests,
)


def _tree(root: Path) -> dict[bytes, bytes]:
    rng = random.Random(3)
    bodies = {}
    sizes = (1, 100, PARTIAL_BLOCK, 2 * PARTIAL_BLOCK, 2 * PARTIAL_BLOCK + 1,
             5 * PARTIAL_BLOCK + 7, (1 << 20) + 3)
    for k, size in enumerate(sizes):
        rel = f"2019010{k % 3 + 1}/f{k}.jpg"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        body = rng.randbytes(size)
        (root / rel).write_bytes(body)
        bodies[rel.encode()] = body
    # a name that is not UTF-8: the key is its raw bytes
    odd = b"20190101/caf\xe9.jpg"
    with open(os.path.join(os.fsencode(root), odd), "wb") as f:
        f.write(b"odd name")
    bodies[odd] = b"odd name"
    return bodies


def test_batch_digests_equal_one_file_at_a_time(tmp_path: Path) -> None:
    root = tmp_path / "img"
    bodies = _tree(root)
    rows = [(key, len(body)) for key, body in bodies.items()]
    errors: dict[bytes, str] = {}
    partial = digest_keys(str(root), rows, "partial", errors)
    full = digest_keys(str(root), rows, "full", errors)
    assert errors == {} and len(partial) == len(full) == len(rows)
    for (key, size), p, f in zip(rows, partial, full, strict=True):
        path = os.fsdecode(os.path.join(os.fsencode(root), key))
        assert p == partial_digest(path, size, os.fsdecode(key))[0] == \
            partial_of_body(bodies[key])
        assert f == full_digest(path, os.fsdecode(key)) == hashlib.sha1(bodies[key]).hexdigest()
    assert len(set(partial)) == len(rows)


def test_a_file_grown_since_the_walk_is_read_whole(tmp_path: Path) -> None:
    """The walk's size is a hint: a small file that grew is still digested whole."""
    (tmp_path / "a.jpg").write_bytes(b"x" * 5000)
    errors: dict[bytes, str] = {}
    [p] = digest_keys(str(tmp_path), [(b"a.jpg", 10)], "partial", errors)
    assert errors == {}
    assert p == partial_of_body(b"x" * 5000) == partial_digest(str(tmp_path / "a.jpg"), 10)[0]


def test_a_missing_file_and_a_swapped_folder_give_errors(tmp_path: Path) -> None:
    root, outside = tmp_path / "img", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    (outside / "d").mkdir(parents=True)
    (root / "d" / "a.jpg").write_bytes(b"inside")
    (outside / "d" / "a.jpg").write_bytes(b"secret")
    rows = [(b"d/a.jpg", 6), (b"d/gone.jpg", 3)]
    errors: dict[bytes, str] = {}
    ok, none = digest_keys(str(root), rows, "partial", errors)
    assert b"d/a.jpg" not in errors and ok == partial_of_body(b"inside")
    assert none is None and errors[b"d/gone.jpg"].startswith("cannot read: ")
    os.rename(root / "d", tmp_path / "d.away")  # the walk saw a folder; now it is a link
    os.symlink(outside / "d", root / "d")
    for kind in ("partial", "full"):
        errors = {}
        [digest] = digest_keys(str(root), rows[:1], kind, errors)
        assert digest is None
        assert errors == {b"d/a.jpg": "cannot read: a folder on the way became a symbolic link"}


def test_a_root_given_through_a_symlink_is_read(tmp_path: Path) -> None:
    """The root itself may be a symlink (its real path is what the check compares)."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.jpg").write_bytes(b"abc")
    os.symlink(tmp_path / "real", tmp_path / "link")
    errors: dict[bytes, str] = {}
    [p] = digest_keys(str(tmp_path / "link") + "/", [(b"a.jpg", 3)], "full", errors)
    assert errors == {} and p == hashlib.sha1(b"abc").hexdigest()


def _evict(path: Path) -> None:
    """Drop a file's pages from the page cache (written back first: only clean pages go)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_a_file_not_in_the_page_cache_is_left_for_a_blocking_read(tmp_path: Path) -> None:
    """The cached-first pass reads only what the page cache holds; a file that would
    wait for the disk, or is no longer the size the walk saw, is left for later, and
    :func:`read_digests` with threads gives every digest as one thread reading all."""
    root = tmp_path / "img"
    bodies = _tree(root)
    rows = sorted((key, len(body)) for key, body in bodies.items())
    changed = rows[4][0]
    rows.append((changed, rows[4][1] + 1))  # its size changed since the walk
    cold = [k for k, _ in rows[:3]]
    for key in cold:
        _evict(root / os.fsdecode(key))
    later: list[int] = []
    errors: dict[bytes, str] = {}
    got = digest_keys(str(root), rows, "partial", errors, later)
    assert not errors
    assert {rows[i][0] for i in later} == {*cold, changed}
    assert all((d is None) == (i in later) for i, d in enumerate(got))
    assert len(later) == 4
    for (key, _), d in zip(rows, got, strict=True):
        assert d is None or d == partial_of_body(bodies[key])
    for key in cold:
        _evict(root / os.fsdecode(key))
    # enough files for the threads to take some (HAND_OVER), read cold
    many = tmp_path / "many"
    many.mkdir()
    for k in range(3 * digests.HAND_OVER):
        (many / f"{k:04d}.jpg").write_bytes(bytes([k % 256]) * (100 + k))
    for k in range(0, 3 * digests.HAND_OVER, 2):
        _evict(many / f"{k:04d}.jpg")
    many_rows = [(f"{k:04d}.jpg".encode(), 100 + k) for k in range(3 * digests.HAND_OVER)]
    for r, w in ((rows, 2), (many_rows, 3)):
        one: dict[bytes, str] = {}
        two: dict[bytes, str] = {}
        base = str(root if r is rows else many)
        threaded = read_digests(base, r, "partial", workers=w, errors=two, ordered=True)
        assert threaded == digest_keys(base, r, "partial", one)
        assert one == two == {}
        assert None not in threaded


def test_both_sha1_makers_give_hashlibs_digest(tmp_path: Path) -> None:
    """A few small copies are hashed by the interpreter's own SHA-1 (no libcrypto to
    load), a larger total by OpenSSL's: the digest is the same."""
    body = random.Random(5).randbytes(3 * PARTIAL_BLOCK + 11)
    for k in range(3):
        (tmp_path / f"{k}.jpg").write_bytes(body)
    want = hashlib.sha1(body).hexdigest()
    assert digests.sha1_for(100) is not hashlib.sha1
    assert digests.sha1_for(digests.SMALL_SHA1 + 1) is hashlib.sha1
    assert digests.sha1_for(100)(body).hexdigest() == want
    small = [(f"{k}.jpg".encode(), len(body)) for k in range(3)]
    large = [(key, digests.SMALL_SHA1) for key, _ in small]  # sizes as the walk saw them
    for rows in (small, large):
        assert digest_keys(str(tmp_path), rows, "full", {}) == [want] * 3


def test_the_sha1_maker_is_chosen_once_a_run(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Full digests shared out to threads in batches take one SHA-1 maker, chosen for
    every byte the run reads (OpenSSL's above :data:`SMALL_SHA1`), not one a batch."""
    chosen: list[int] = []
    real = digests.sha1_for

    def counted(total: int) -> object:
        chosen.append(total)
        return real(total)

    monkeypatch.setattr(digests, "sha1_for", counted)
    body = random.Random(7).randbytes(1 << 20)
    rows = []
    for k in range(18):  # 18 MiB: past the 16 MiB from which threads share the work
        (tmp_path / f"{k:02d}.jpg").write_bytes(body[k:] + body[:k])
        rows.append((f"{k:02d}.jpg".encode(), len(body)))
    errors: dict[bytes, str] = {}
    got = read_digests(str(tmp_path), rows, "full", workers=2, errors=errors, ordered=True)
    assert chosen == [18 << 20]
    assert errors == {}
    assert got == [hashlib.sha1(body[k:] + body[:k]).hexdigest() for k in range(18)]


def test_threads_for_a_cold_cache_load_no_concurrent_futures(tmp_path: Path) -> None:
    """Files the page cache does not hold go to threads without importing
    ``concurrent.futures`` (~15 CPU ms: it loads ``logging`` and ``re``), and give the
    digests one thread gives."""
    import subprocess
    import sys

    root = tmp_path / "img"
    root.mkdir()
    for k in range(300):
        (root / f"{k:03d}.jpg").write_bytes(bytes([k % 13]) * (3000 + k % 3))
        _evict(root / f"{k:03d}.jpg")
    code = ("import sys\n"
            "from weaklabel.images.digests import digest_keys, read_digests\n"
            f"root = {str(root)!r}\n"
            "rows = sorted((f'{k:03d}.jpg'.encode(), 3000 + k % 3) for k in range(300))\n"
            "errors = {}\n"
            "got = read_digests(root, rows, 'partial', workers=2, errors=errors,"
            " ordered=True)\n"
            "assert errors == {} and got == digest_keys(root, rows, 'partial', {})\n"
            "import threading\n"
            "print(threading.active_count(), 'concurrent.futures' in sys.modules,"
            " 'logging' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "False", "False"]  # threads joined, no import


def test_a_thread_jobs_error_reaches_the_caller() -> None:
    pool = digests.Threads(2)
    try:
        ok = pool.submit(sum, [1, 2])
        bad = pool.submit(int, "x")
        assert ok.result() == 3
        with pytest.raises(ValueError):
            bad.result()
    finally:
        pool.shutdown()
    assert all(not t.is_alive() for t in pool._threads)


def test_a_failing_follow_up_is_the_jobs_error_and_the_thread_goes_on() -> None:
    pool = digests.Threads(1)

    def boom() -> None:
        raise OSError("stderr is a closed pipe")

    try:
        first = pool.submit(sum, [1], then=boom)
        second = pool.submit(sum, [2, 3])
        with pytest.raises(OSError, match="closed pipe"):
            first.result()
        assert second.done.wait(10) and second.result() == 5
    finally:
        pool.shutdown()


def test_an_openssl_that_refuses_sha1_falls_back_as_hashlib_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a policy that blocks SHA-1 (FIPS), ``_hashlib.openssl_sha1`` exists but
    raises ValueError when called; hashlib probes it and uses its own SHA-1 instead,
    and so must the large-total path. (The refusal cannot be had for real here.)"""
    import _hashlib

    def blocked(*args: object, **kwargs: object) -> None:
        raise ValueError("[digital envelope routines] unsupported")

    monkeypatch.setattr(_hashlib, "openssl_sha1", blocked)
    sha1 = digests.sha1_for(digests.SMALL_SHA1 + 1)
    assert sha1 is not blocked
    assert sha1(b"abc").hexdigest() == "a9993e364706816aba3e25717850c26c9cd0d89d"
