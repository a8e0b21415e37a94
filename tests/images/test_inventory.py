"""Inventory: walking, content sniffing, caching."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import jpeg_bytes, photo, write

from weaklabel.images import hashes, inventory
from weaklabel.images.checks import sniff
from weaklabel.images.inventory import Inventory
from weaklabel.images.walk import display_path, walk


def scan(root: Path, ws: Path, **kw: object) -> tuple[Inventory, dict[str, int]]:
    inv = inventory.open_inventory(ws, root=root, max_pixels=89_478_485)
    counts = inv.scan(root, check=True, hash_spec=kw.pop("hash_spec", None),  # type: ignore[arg-type]
                      max_pixels=89_478_485, workers=kw.pop("workers", 1), **kw)  # type: ignore[arg-type]
    return inv, counts


@pytest.mark.parametrize(("head", "fmt", "what"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG", "jpeg"),
    (b"\x89PNG\r\n\x1a\n....", "PNG", "png"),
    (b"GIF89a....", "GIF", "gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP", "webp"),
    (b"<!DOCTYPE html><html>", None, "html"),
    (b'<?xml version="1.0"?><Error>', None, "xml"),
    (b"PK\x03\x04\x14\x00", None, "zip archive"),
    (b"\x00\x01\x02\xfe\xfd", None, "unknown bytes"),
    (b"hello world", None, "text"),
])
def test_sniff_by_content(head: bytes, fmt: str | None, what: str) -> None:
    assert sniff(head) == (fmt, what)


def test_walk_reports_every_problem_and_skips_nothing(tree: Path) -> None:
    entries = {e.rel: e for e in walk(tree)}
    assert entries["links_loop"].reason == "symlink loop"
    assert entries["dangling.jpg"].reason.startswith("dangling symlink")
    assert "leaves the image root" in entries["escape.jpg"].reason
    assert entries["inside_link.jpg"].status == "skipped"
    assert entries["sub/up"].status == "skipped"  # folder loop: not followed
    assert entries["fifo.jpg"].status == "unreadable"
    assert entries["odd/new\nline.jpg"].kind == "file"
    assert entries["odd/-leading.jpg"].kind == "file"
    assert os.fsdecode(b"odd/caf\xe9.jpg") in entries
    assert not any(r.startswith("dir_named.jpg") and r != "dir_named.jpg" for r in entries)
    files = sorted(e.rel for e in entries.values() if e.kind == "file")
    on_disk = sorted(
        os.path.relpath(os.path.join(d, f), tree)
        for d, _, fs in os.walk(tree) for f in fs
        if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f))
    )
    assert files == on_disk


def test_walk_skips_workspace_inside_root(tree: Path) -> None:
    ws = tree / "build"
    write(ws / "quarantine" / "run" / "x.jpg", jpeg_bytes(photo(1)))
    rels = [e.rel for e in walk(tree, skip=[ws])]
    assert not any(r.startswith("build") for r in rels)


def test_unreadable_folder_and_file_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "img"
    write(root / "locked" / "a.jpg", jpeg_bytes(photo(1)))
    write(root / "secret.jpg", jpeg_bytes(photo(2)))
    if os.geteuid() == 0:
        # root ignores permissions: simulate EACCES where the folder and the file are opened
        real_open = inventory.os.open

        def fake_open(path, flags, *a, **kw):  # type: ignore[no-untyped-def]
            if os.fsdecode(path).endswith(("secret.jpg", "locked")):
                raise PermissionError(13, "Permission denied")
            return real_open(path, flags, *a, **kw)

        monkeypatch.setattr(inventory.os, "open", fake_open)
    else:
        (root / "locked").chmod(0)
        (root / "secret.jpg").chmod(0)
    try:
        inv, _ = scan(root, tmp_path / "ws")
        rows = {r["path"]: r for r in inv.rows()}
    finally:
        (root / "locked").chmod(0o755)
        (root / "secret.jpg").chmod(0o644)
    assert rows["locked"]["status"] == "unreadable"
    assert "cannot list folder" in rows["locked"]["reason"]
    assert rows["secret.jpg"]["status"] == "unreadable"
    assert "Permission denied" in rows["secret.jpg"]["reason"]


def test_second_run_reads_nothing_and_changes_are_read(tree: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    inv, first = scan(tree, ws)
    assert first["read"] > 20
    inv.close()
    inv, second = scan(tree, ws)
    assert second["read"] == 0 and second["seen"] == first["seen"]
    inv.close()
    # a new day's folder and one changed file: only those are read
    write(tree / "20190306" / "new.jpg", jpeg_bytes(photo(20)))
    p = tree / "20190303" / "b.png"
    p.write_bytes(jpeg_bytes(photo(21)))
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    (tree / "20190303" / "c.jpg").unlink()
    inv, third = scan(tree, ws)
    assert third["read"] == 2
    assert third["removed"] == 1
    rows = {r["path"]: r for r in inv.rows()}
    assert rows["20190303/b.png"]["format"] == "JPEG"  # re-sniffed by content
    assert "20190303/c.jpg" not in rows
    inv.close()


def test_parallel_scan_equals_serial(tree: Path, tmp_path: Path) -> None:
    a, _ = scan(tree, tmp_path / "ws1", workers=1, hash_spec=("phash", 8))
    b, _ = scan(tree, tmp_path / "ws2", workers=2, hash_spec=("phash", 8))
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("ino", "dev")}  # noqa: E731
                          for r in rows]
    assert strip(a.rows("phash-8")) == strip(b.rows("phash-8"))


def test_another_root_resets_the_inventory(tree: Path, tmp_path: Path) -> None:
    inv, _ = scan(tree, tmp_path / "ws")
    inv.close()
    other = tmp_path / "other"
    write(other / "x.jpg", jpeg_bytes(photo(1)))
    inv, counts = scan(other, tmp_path / "ws")
    assert [r["path"] for r in inv.rows()] == ["x.jpg"] and counts["read"] == 1


def test_an_inventory_of_another_schema_says_so_not_another_root(
        tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import sqlite3

    from weaklabel.images.inventory_db import SCHEMA_VERSION

    inv, first = scan(tree, tmp_path / "ws")
    inv.close()
    db = sqlite3.connect(tmp_path / "ws" / "inventory.sqlite")
    with db:
        db.execute("UPDATE meta SET value='6' WHERE key='schema'")
    db.close()
    with caplog.at_level(logging.WARNING):
        inv, counts = scan(tree, tmp_path / "ws")
    inv.close()
    assert counts["read"] == first["read"] > 0  # every file read again
    assert (f"was built by another weaklabel (schema 6, now {SCHEMA_VERSION}); every file "
            "is read again") in caplog.text
    assert "starting a new one" not in caplog.text


def test_schema_7_keeps_the_hashes_of_formats_read_as_8_bit_only(tmp_path: Path) -> None:
    """7 -> 8 changed how 16-bit samples are hashed: a JPEG's hash (and every file's
    row) is kept, a PNG's is made again, instead of every file read again."""
    import io
    import sqlite3

    from PIL import Image

    root = tmp_path / "img"
    write(root / "a.jpg", jpeg_bytes(photo(1)))
    write(root / "b.jpg", jpeg_bytes(photo(2)))
    with Image.open(io.BytesIO(jpeg_bytes(photo(3)))) as im:
        im.save(root / "c.png")
    inv, first = scan(root, tmp_path / "ws", hash_spec=("phash", 8))
    inv.close()
    assert first["read"] == 3
    db = sqlite3.connect(tmp_path / "ws" / "inventory.sqlite")
    with db:
        db.execute("UPDATE meta SET value='7' WHERE key='schema'")
    db.close()
    inv, counts = scan(root, tmp_path / "ws", hash_spec=("phash", 8))
    rows = {r["path"]: r for r in inv.rows("phash-8")}
    inv.close()
    assert counts["read"] == 1  # c.png only
    assert set(rows) == {"a.jpg", "b.jpg", "c.png"} and all(r["hash"] for r in rows.values())


def test_display_path_escapes_undecodable_bytes() -> None:
    assert display_path(os.fsdecode(b"a/caf\xe9.jpg")) == "a/caf\\xe9.jpg"
    assert display_path("a/카페.jpg") == "a/카페.jpg"


def test_hash_registry_lists_valid_names() -> None:
    from weaklabel.errors import WeaklabelError

    with pytest.raises(WeaklabelError, match="valid: ahash, dhash, phash, whash"):
        hashes.hash_method("md5")
    with pytest.raises(WeaklabelError, match="valid: ahash, dhash, phash, whash"):
        hashes.draft_side(("phahs", 8))
    with pytest.raises(WeaklabelError, match="hash_size"):
        hashes.hash_key("phash", 16)
    assert hashes.draft_side(("phash", 8)) == 64 and hashes.draft_side(("whash", 8)) == 0


def test_a_body_in_memory_gets_the_files_partial_digest(tmp_path: Path) -> None:
    """An object read in place is digested from its body in memory, a file from two
    ``pread``s: the same bytes must give the same partial digest, or same-size copies
    split between a bucket and a folder would never reach the SHA-1 that decides."""
    import random

    from weaklabel.images.digests import PARTIAL_BLOCK, partial_digest, partial_of_body

    rng = random.Random(5)
    seen = set()
    for size in (0, 1, 100, 2 * PARTIAL_BLOCK, 2 * PARTIAL_BLOCK + 1, 5 * PARTIAL_BLOCK + 7):
        body = bytes(rng.randrange(256) for _ in range(size))
        path = tmp_path / f"f{size}.bin"
        path.write_bytes(body)
        assert partial_of_body(body) == partial_digest(str(path), size)[0], size
        seen.add(partial_of_body(body))
    assert len(seen) == 6  # the digests tell these bodies apart


def test_a_torn_inventory_is_set_aside_before_purge_trusts_it(tmp_path: Path) -> None:
    """purge (and a full dedup) open the inventory through :class:`Inventory`, which
    checks it whole: a page a torn write zeroed is found on opening, the file is set
    aside and every file judged again, as on a fresh workspace."""
    from weaklabel.config import Config, ImagesConfig
    from weaklabel.images.purge import image_stage, run_purge

    one = Config(images=ImagesConfig(workers=1))
    root = tmp_path / "img"
    for k in range(1500):
        write(root / f"d{k % 5}" / f"{k}.jpg", bytes([k % 251]) * (k % 300 + 1))
    write(root / "ok" / "a.jpg", jpeg_bytes(photo(1)))
    ws = tmp_path / "ws"
    run_purge(*image_stage(root, ws, one))
    path = ws / "inventory.sqlite"
    body = bytearray(path.read_bytes())
    assert len(body) > 100_000
    body[-60_000:-50_000] = bytes(10_000)
    path.write_bytes(body)
    again = run_purge(*image_stage(root, ws, one))
    fresh = run_purge(*image_stage(root, tmp_path / "fresh", one))
    assert again.outputs[0].read_bytes() == fresh.outputs[0].read_bytes()
    assert (ws / "inventory.sqlite.damaged").is_file()
    assert again.summary.counts == fresh.summary.counts


def _open_fds_to(path: Path) -> list[str]:
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                fds.append(fd)
        except OSError:
            pass
    return fds


def test_a_file_that_is_no_inventory_is_closed_before_it_is_set_aside(tmp_path: Path) -> None:
    """``connect`` on a file that is not an SQLite database closes its connection
    itself: while the error is handled (and the file moved aside), nothing holds it."""
    from weaklabel.errors import WeaklabelError
    from weaklabel.images import inventory_db

    path = tmp_path / "inventory.sqlite"
    path.write_bytes(b"not a database, " * 512)
    try:
        inventory_db.connect(str(path))
    except WeaklabelError as exc:
        assert inventory_db.damaged(exc)
        assert _open_fds_to(path) == []  # the traceback still holds connect's frame
    else:
        raise AssertionError("connect took a file that is no database")
    aside = inventory_db.set_aside(str(path))
    db = inventory_db.connect(str(path))
    try:
        assert inventory_db.is_whole(db)
        assert db.execute("SELECT COUNT(*) FROM files").fetchone() == (0,)
    finally:
        db.close()
    assert Path(aside).read_bytes().startswith(b"not a database")


@pytest.mark.parametrize("crash_at", [1, 2])
def test_set_aside_moves_the_wal_before_the_database(tmp_path: Path, crash_at: int,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between two of its moves (the ``crash_at``-th rename fails) never leaves
    at the inventory's name a WAL without its database, which a new database there
    would replay, nor beside it an older copy's database with this one's WAL; a whole
    move takes both, replacing an older damaged copy whole."""
    from weaklabel.images import inventory_db

    path = tmp_path / "inventory.sqlite"
    aside = Path(f"{path}.damaged")
    real_replace, calls = os.replace, []

    def crashing_replace(src: str, dst: str) -> None:
        if os.path.exists(src):
            calls.append(src)
            if len(calls) == crash_at:
                raise OSError(5, "simulated crash")
        real_replace(src, dst)

    def setup() -> None:
        path.write_bytes(b"database")
        Path(f"{path}-wal").write_bytes(b"its wal")
        aside.write_bytes(b"older database")
        Path(f"{aside}-shm").write_bytes(b"older shm")

    setup()
    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        inventory_db.set_aside(str(path))
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.exists() or not Path(f"{path}-wal").exists()
    # beside: no WAL paired with another database than its own
    if aside.exists() and Path(f"{aside}-wal").exists():
        assert aside.read_bytes() == b"database"
    # the re-run's move completes, whatever the crash left
    if path.exists():
        assert inventory_db.set_aside(str(path)) == str(aside)
        assert aside.read_bytes() == b"database"
    assert not path.exists() and not Path(f"{path}-wal").exists()
    assert not Path(f"{aside}-shm").exists()  # the older copy's, gone with it
    # uninterrupted: both files aside, together
    for p in (aside, Path(f"{aside}-wal")):
        p.unlink(missing_ok=True)
    setup()
    inventory_db.set_aside(str(path))
    assert aside.read_bytes() == b"database"
    assert Path(f"{aside}-wal").read_bytes() == b"its wal"
    assert not Path(f"{aside}-shm").exists() and not path.exists()


def test_insert_rows_in_batches_equals_one_by_one(tmp_path: Path) -> None:
    import sqlite3

    from weaklabel.images import inventory_db

    for n in (0, 1, inventory_db.INSERT_BATCH, 2 * inventory_db.INSERT_BATCH + 7):
        rows = [(f"{k:05d}".encode(), k, k * 3, None if k % 2 else f"{k:08x}")
                for k in range(n)]
        dbs = []
        for batched in (True, False):
            db = sqlite3.connect(":memory:")
            db.execute("CREATE TABLE t (p BLOB PRIMARY KEY, kind TEXT, a, b, c)")
            if batched:
                inventory_db.insert_rows(db, "INSERT INTO t (p, kind, a, b, c)",
                                         "(?, 'file', ?, ?, ?)", rows)
            else:
                db.executemany("INSERT INTO t VALUES (?, 'file', ?, ?, ?)", rows)
            dbs.append(db.execute("SELECT * FROM t ORDER BY p").fetchall())
            db.close()
        assert dbs[0] == dbs[1] and len(dbs[0]) == n


def test_insert_rows_takes_only_bytes_keys() -> None:
    """A key that is not ``bytes`` is a caller's bug (an int would bind as that many
    zero bytes): refused before anything is written."""
    import sqlite3

    from weaklabel.images import inventory_db

    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (p BLOB PRIMARY KEY, a)")
    for key in (5, "a.jpg"):
        with pytest.raises(AssertionError, match="bytes"):
            inventory_db.insert_rows(db, "INSERT INTO t (p, a)", "(?, ?)", [(key, 1)])
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


@pytest.mark.parametrize("swapped", ["day", "day/trip"],
                         ids=["its-parent", "the-folder"])
def test_a_folder_swapped_for_a_symlink_after_its_parent_was_listed_is_not_entered(
        swapped: str, tmp_path: Path) -> None:
    """Between a folder's listing and its subfolder's, the subfolder (or the folder
    itself, an ancestor of the path still to read) is replaced by a symlink to
    somewhere else: the walk reports the subfolder as changed (``skipped``) and lists
    nothing of where the link leads as under the root."""
    import shutil

    from weaklabel.images.walk import walk_keys

    root = tmp_path / "img"
    write(root / "day" / "trip" / "a.jpg", b"inside")
    outside = tmp_path / "elsewhere"
    write(outside / "trip" / "secret.jpg", b"outside")
    # the walk is a generator: swap once "day" has been listed, before "day/trip" is read
    files, problems = [], []
    for n, (fs, ps) in enumerate(walk_keys(root)):
        files += fs
        problems += ps
        if n == 1:  # the root, then "day": "day/trip" is next
            if swapped == "day":
                shutil.move(root / "day", tmp_path / "day.old")
                (root / "day").symlink_to(outside, target_is_directory=True)
            else:
                shutil.move(root / "day" / "trip", tmp_path / "trip.old")
                (root / "day" / "trip").symlink_to(outside / "trip", target_is_directory=True)
    assert files == []
    assert problems == [(b"day/trip", "skipped",
                         "folder changed during the walk (not followed)")]


def test_a_path_past_path_max_is_reported_as_a_stat_by_path_reports_it(
        tmp_path: Path) -> None:
    """A name one lstat away from its folder's descriptor can still be past PATH_MAX
    as a whole path, which purge and dedup cannot open: it is reported as it was when
    the walk stat'ed full paths, and the stages agree on it."""
    from weaklabel.images.walk import walk_keys

    root = tmp_path / "img"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    length = len(os.fsencode(root))
    try:
        while length < 3880:  # folders of up to 200-byte names, each opened from the last
            name = "d" * min(200, max(3880 - length - 1, 5))
            os.mkdir(name, dir_fd=fd)
            sub = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, length = sub, length + 1 + len(name)
        for name in ("short.jpg", "L" * 251 + ".jpg"):
            w = os.open(name, os.O_CREAT | os.O_WRONLY, dir_fd=fd)
            os.write(w, b"same bytes")
            os.close(w)
    finally:
        os.close(fd)
    files = [f[0] for fs, _ in walk_keys(root) for f in fs]
    problems = [p for _, ps in walk_keys(root) for p in ps]
    assert [k.rsplit(b"/", 1)[1] for k in files] == [b"short.jpg"]
    assert len(os.fsencode(root)) + 1 + len(files[0]) <= 4095
    assert [(k.rsplit(b"/", 1)[1], s, r) for k, s, r in problems] == [
        (b"L" * 251 + b".jpg", "unreadable", "cannot stat: File name too long")]


def test_a_root_that_is_a_symlink_is_walked(tmp_path: Path) -> None:
    """The root a user names may itself be a symlink (a mounted dump's folder): it is
    followed, with or without a trailing slash; symlinks below it are not."""
    from weaklabel.images.walk import walk_keys

    write(tmp_path / "real" / "day" / "a.jpg", b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real" / "day2").symlink_to(tmp_path / "real" / "day",
                                            target_is_directory=True)
    for root in (str(tmp_path / "link"), str(tmp_path / "link") + "/"):
        files = [f[0] for fs, _ in walk_keys(root) for f in fs]
        problems = [p[:2] for _, ps in walk_keys(root) for p in ps]
        assert files == [b"day/a.jpg"], root
        assert problems == [(b"day2", "skipped")], root
