"""The lean exact-only path (images/exact.py) and the inventory the other stages read:
the rows it leaves are the rows a full scan would trust, whichever runs first, and an
interrupted run leaves nothing half-written."""

from __future__ import annotations

import csv
import gc
import io
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import jpeg_bytes, photo, write
from hypothesis import given
from hypothesis import strategies as st

from weaklabel.config import Config, ImagesConfig
from weaklabel.images import exact
from weaklabel.images.dedup import run_dedup
from weaklabel.images.exact import csv_field, is_date
from weaklabel.images.purge import image_stage, run_purge

ONE = Config(images=ImagesConfig(workers=1))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def exact_rows(path: Path) -> list[tuple[str, str, str]]:
    return [(r["kept"], r["duplicate"], r["reason"]) for r in read_csv(path)
            if r["kind"] == "exact"]


def inventory(ws: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(ws / "inventory.sqlite")
    try:
        return db.execute("SELECT path, kind, size, mtime_ns, ino, dev, sha1, partial, width, "
                          "height, format, status, reason FROM files ORDER BY path").fetchall()
    finally:
        db.close()


def test_a_full_dedup_after_exact_only_finds_what_it_finds_alone(tree: Path,
                                                                 tmp_path: Path) -> None:
    lean = run_dedup(*image_stage(tree, tmp_path / "ws", ONE), exact_only=True)
    assert lean.summary.scan["read"] == 0 and lean.summary.exact > 0
    after = run_dedup(*image_stage(tree, tmp_path / "ws", ONE))
    alone = run_dedup(*image_stage(tree, tmp_path / "alone", ONE))
    assert after.outputs[0].read_bytes() == alone.outputs[0].read_bytes()
    assert after.outputs[1].read_bytes() == alone.outputs[1].read_bytes()
    assert inventory(tmp_path / "ws") == inventory(tmp_path / "alone")


def test_purge_after_exact_only_judges_every_file(tree: Path, tmp_path: Path) -> None:
    run_dedup(*image_stage(tree, tmp_path / "ws", ONE), exact_only=True)
    after = run_purge(*image_stage(tree, tmp_path / "ws", ONE))
    alone = run_purge(*image_stage(tree, tmp_path / "alone", ONE))
    assert after.outputs[0].read_bytes() == alone.outputs[0].read_bytes()
    assert after.summary.counts == alone.summary.counts
    assert after.summary.corrupt > 0


def test_exact_only_after_purge_keeps_its_statuses_and_excludes_the_corrupt(
        tree: Path, tmp_path: Path) -> None:
    run_purge(*image_stage(tree, tmp_path / "ws", ONE))
    judged = inventory(tmp_path / "ws")
    lean = run_dedup(*image_stage(tree, tmp_path / "ws", ONE), exact_only=True)
    fresh = run_dedup(*image_stage(tree, tmp_path / "fresh", ONE), exact_only=True)
    assert exact_rows(lean.outputs[0]) == exact_rows(fresh.outputs[0])
    excluded = {r["path"]: r["reason"] for r in read_csv(lean.outputs[1])}
    assert excluded["bad/trunc.jpg"] == "truncated (see purge)"
    assert read_csv(fresh.outputs[1]) == []  # nothing judged yet: nothing to exclude
    # the statuses and decode facts purge found stay; only digests were added
    after = {r[0]: r for r in inventory(tmp_path / "ws")}
    for row in judged:
        assert after[row[0]][8:] == row[8:] and after[row[0]][:6] == row[:6]


def test_a_changed_file_a_new_twin_and_a_removed_one(tmp_path: Path) -> None:
    root = tmp_path / "img"
    for k in range(4):
        write(root / f"2019030{k + 1}" / f"{k}.jpg", jpeg_bytes(photo(k)))
    write(root / "x" / "twin.jpg", (root / "20190301" / "0.jpg").read_bytes())
    ws = tmp_path / "ws"
    first = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert [r[:2] for r in exact_rows(first.outputs[0])] == [("20190301/0.jpg", "x/twin.jpg")]
    # same size, other bytes, a new mtime: the cached digests must not answer for it
    body = bytearray((root / "x" / "twin.jpg").read_bytes())
    body[len(body) // 2] ^= 0xFF
    (root / "x" / "twin.jpg").write_bytes(bytes(body))
    os.utime(root / "x" / "twin.jpg", ns=(1, 1))
    write(root / "y" / "twin2.jpg", (root / "20190302" / "1.jpg").read_bytes())
    second = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert [r[:2] for r in exact_rows(second.outputs[0])] == [("20190302/1.jpg", "y/twin2.jpg")]
    (root / "y" / "twin2.jpg").unlink()
    third = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert exact_rows(third.outputs[0]) == [] and third.summary.scan["removed"] == 1
    assert [r[0] for r in inventory(ws)] == [os.fsencode(p) for p in (
        "20190301/0.jpg", "20190302/1.jpg", "20190303/2.jpg", "20190304/3.jpg", "x/twin.jpg")]
    # unchanged since: nothing is read again
    again = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert again.summary.scan == {"seen": 5, "read": 0, "removed": 0, "partial": 0, "full": 0}


def test_an_interrupted_run_writes_nothing_and_its_rerun_finishes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "img"
    for k in range(3):
        write(root / "d" / f"{k}.jpg", jpeg_bytes(photo(k)))
    shutil.copy(root / "d" / "1.jpg", root / "d" / "1_copy.jpg")
    ws = tmp_path / "ws"
    run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    before = inventory(ws)
    shutil.copy(root / "d" / "2.jpg", root / "d" / "2_copy.jpg")
    from weaklabel.images import digests

    real = digests.read_digests

    def interrupted(root_: str, rows: list[tuple[bytes, int]], kind: str,
                    **kw: object) -> object:
        if kind == "full":  # Ctrl-C once the partial digests are read
            raise KeyboardInterrupt
        return real(root_, rows, kind, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(digests, "read_digests", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert inventory(ws) == before
    assert not (ws / "duplicates.csv.meta.json").exists()
    monkeypatch.undo()
    rerun = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    fresh = run_dedup(*image_stage(root, tmp_path / "fresh", ONE), exact_only=True)
    assert rerun.outputs[0].read_bytes() == fresh.outputs[0].read_bytes()
    assert [r[:2] for r in exact_rows(rerun.outputs[0])] == [
        ("d/1.jpg", "d/1_copy.jpg"), ("d/2.jpg", "d/2_copy.jpg")]
    assert [r[6] for r in inventory(ws)] == [r[6] for r in inventory(tmp_path / "fresh")]


def test_every_reported_copy_has_its_full_sha1(tmp_path: Path) -> None:
    """Same size and the same first and last 4 KiB, different in the middle: only the
    full SHA-1 tells them apart, so every member of a group is hashed in full."""
    root = tmp_path / "img"
    head, tail = os.urandom(4096), os.urandom(4096)
    write(root / "a.jpg", head + b"a" * 5000 + tail)
    write(root / "b.jpg", head + b"b" * 5000 + tail)
    write(root / "c.jpg", head + b"a" * 5000 + tail)
    res = run_dedup(*image_stage(root, tmp_path / "ws", ONE), exact_only=True)
    assert [r[:2] for r in exact_rows(res.outputs[0])] == [("a.jpg", "c.jpg")]
    assert res.summary.scan["partial"] == 3 and res.summary.scan["full"] == 3
    import hashlib

    sha = {r[0]: r[6] for r in inventory(tmp_path / "ws")}
    assert sha == {os.fsencode(n): hashlib.sha1((root / n).read_bytes()).hexdigest()
                   for n in ("a.jpg", "b.jpg", "c.jpg")}


def test_a_unique_size_is_never_read(tmp_path: Path) -> None:
    root = tmp_path / "img"
    for k in range(5):
        write(root / f"{k}.jpg", b"x" * (100 + k))
    res = run_dedup(*image_stage(root, tmp_path / "ws", ONE), exact_only=True)
    assert res.summary.scan["partial"] == 0 and res.summary.scan["full"] == 0
    assert {r[7] for r in inventory(tmp_path / "ws")} == {None}
    assert len(inventory(tmp_path / "ws")) == 5  # still a cached row each


def test_the_library_and_the_lean_stage_write_the_same_metas(tree: Path,
                                                             tmp_path: Path) -> None:
    import json

    res = run_dedup(*image_stage(tree, tmp_path / "ws", ONE), exact_only=True)
    meta = json.loads((tmp_path / "ws" / "duplicates.csv.meta.json").read_text())
    assert meta["stage"] == "dedup" and meta["rows"] == res.rows["duplicates.csv"]
    assert meta["params"] == exact.exact_params(None, False, None)
    assert meta["summary"]["exact"] == res.summary.exact
    assert meta["inputs"] == {"root": os.path.realpath(tree)}


CELLS = st.text(st.sampled_from(list('ab ,"\n\r\t;é\\x')), max_size=8) | st.integers()


@given(st.lists(st.lists(CELLS, min_size=2, max_size=6), max_size=5))
def test_the_csv_cells_are_what_the_csv_module_writes(rows: list[list[str | int]]) -> None:
    """Read back by ``csv`` as written; and byte for byte ``csv.writer``'s, except that a
    bare carriage return is always quoted (as ``csv`` itself does from 3.11.9 on)."""
    text = "".join(",".join(map(csv_field, r)) + "\n" for r in rows)
    assert list(csv.reader(io.StringIO(text, newline=""))) == \
        [[str(c) for c in r] for r in rows]
    if not any("\r" in str(c) for r in rows for c in r):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        assert text == buf.getvalue()


def test_a_bare_carriage_return_is_quoted() -> None:
    assert csv_field("a\rb") == '"a\rb"'


DATE = re.compile(r"(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")


@given(st.text(st.sampled_from(list("0123456789a٣٩")), min_size=6, max_size=9)
       | st.builds(lambda y, m, d: f"{y}{m:02d}{d:02d}", st.integers(1850, 2150),
                   st.integers(0, 13), st.integers(0, 40)))
def test_a_date_folder_is_what_the_pattern_matches(part: str) -> None:
    assert is_date(part) == bool(DATE.fullmatch(part))


@pytest.mark.parametrize("damage", ["cut in half", "pages zeroed near the end"])
def test_a_torn_inventory_is_set_aside_and_rebuilt(tmp_path: Path, damage: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A cache damaged by a torn write (found on opening it or only on reading a row's
    page) is never trusted, nor a traceback: it is moved aside and rebuilt, and the
    run gives what a fresh one gives."""
    root = tmp_path / "img"
    for k in range(1500):
        write(root / f"d{k % 5}" / f"{k}.jpg", bytes([k % 251]) * (k % 300 + 1))
    ws = tmp_path / "ws"
    run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    path = ws / "inventory.sqlite"
    body = bytearray(path.read_bytes())
    assert len(body) > 100_000
    if damage == "cut in half":
        del body[len(body) // 2:]
    else:
        body[-60_000:-50_000] = bytes(10_000)
    path.write_bytes(body)
    assert gc.isenabled()
    again = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert gc.isenabled()  # a damaged inventory found on opening it left it off once
    fresh = run_dedup(*image_stage(root, tmp_path / "fresh", ONE), exact_only=True)
    assert again.outputs[0].read_bytes() == fresh.outputs[0].read_bytes()
    assert again.summary.scan == fresh.summary.scan  # every digest read again
    assert (ws / "inventory.sqlite.damaged").is_file()  # kept for a person to look at
    def rows(w: Path) -> list[tuple[object, ...]]:  # without the times and inodes
        return [r[:3] + r[6:] for r in inventory(w)]

    assert rows(ws) == rows(tmp_path / "fresh")
    assert any("damaged" in r.getMessage() for r in caplog.records)


def test_the_scan_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path) -> None:
    import gc

    root = tmp_path / "img"
    write(root / "a.jpg", b"a")
    write(root / "b.jpg", b"a")
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            run_dedup(*image_stage(root, tmp_path / f"ws{enabled}", ONE), exact_only=True)
            assert gc.isenabled() == enabled
        finally:
            gc.enable()


@pytest.mark.parametrize("first", ["exact-only", "purge"])
def test_an_unreadable_file_is_looked_at_again_once_readable(tmp_path: Path,
                                                             first: str) -> None:
    """A file recorded ``unreadable`` (``chmod 000``) is not trusted to stay so: a
    ``chmod`` changes neither its size nor its mtime, so every run looks again, and
    once readable it is read (exact-only) or judged (purge) as any file."""
    root = tmp_path / "img"
    body = jpeg_bytes(photo(3))
    write(root / "a" / "x.jpg", body)
    write(root / "b" / "locked.jpg", body)
    write(root / "c" / "alone.jpg", jpeg_bytes(photo(4)))  # a size no other file has
    locked, alone = root / "b" / "locked.jpg", root / "c" / "alone.jpg"
    ws = tmp_path / "ws"
    stat_before = [os.stat(p) for p in (locked, alone)]
    os.chmod(locked, 0)
    os.chmod(alone, 0)
    try:
        if first == "purge":
            run_purge(*image_stage(root, ws, ONE))
        lean = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
        excluded = {r["path"]: r["reason"] for r in read_csv(lean.outputs[1])}
        if not os.access(locked, os.R_OK):  # as root, a mode of 000 still reads
            assert excluded["b/locked.jpg"].startswith("unreadable")
            assert exact_rows(lean.outputs[0]) == []
            if first == "purge":  # a unique size that purge found unreadable stays so
                assert excluded["c/alone.jpg"].startswith("unreadable")
            # looked at again while still unreadable: still excluded, not forgotten
            again = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
            assert again.outputs[1].read_bytes() == lean.outputs[1].read_bytes()
    finally:
        os.chmod(locked, 0o644)
        os.chmod(alone, 0o644)
    assert [(s.st_size, s.st_mtime_ns) for s in map(os.stat, (locked, alone))] == [
        (s.st_size, s.st_mtime_ns) for s in stat_before]  # the chmod changed neither
    def plant_unreadable() -> None:
        # as a run that met them unreadable left them (as root, the chmod above could
        # not make them so): what follows holds for every user
        db = sqlite3.connect(ws / "inventory.sqlite")
        with db:
            db.execute("UPDATE files SET status='unreadable', reason='cannot read: "
                       "Permission denied' WHERE path IN (?, ?)",
                       (b"b/locked.jpg", b"c/alone.jpg"))
        db.close()

    plant_unreadable()
    fixed = run_dedup(*image_stage(root, ws, ONE), exact_only=True)
    assert exact_rows(fixed.outputs[0]) == [("a/x.jpg", "b/locked.jpg", exact_rows(
        fixed.outputs[0])[0][2])]
    assert read_csv(fixed.outputs[1]) == []
    plant_unreadable()
    purged = run_purge(*image_stage(root, ws, ONE))
    fresh = run_purge(*image_stage(root, tmp_path / "fresh", ONE))
    assert purged.outputs[0].read_bytes() == fresh.outputs[0].read_bytes()
    statuses = {r[0]: r[11] for r in inventory(ws)}
    assert statuses[b"b/locked.jpg"] == statuses[b"c/alone.jpg"] == "ok"


def test_many_new_rows_go_in_whole(tmp_path: Path) -> None:
    """A cold run's rows go in a hundred a statement: every file of a tree whose count
    is no multiple of that has its row, the same as a run that adds them one by one."""
    root = tmp_path / "img"
    for k in range(257):
        write(root / f"d{k % 3}" / f"{k}.jpg", bytes([k % 7]) * (k % 5 + 1))
    cold = run_dedup(*image_stage(root, tmp_path / "ws", ONE), exact_only=True)
    rows = inventory(tmp_path / "ws")
    assert len(rows) == 257 and cold.summary.scan["seen"] == 257
    # the same tree grown a file at a time: each run inserts one row
    root2, ws2 = tmp_path / "img2", tmp_path / "ws2"
    for k in range(257):
        write(root2 / f"d{k % 3}" / f"{k}.jpg", (root / f"d{k % 3}" / f"{k}.jpg").read_bytes())
        if k in (0, 99, 255):
            run_dedup(*image_stage(root2, ws2, ONE), exact_only=True)
    grown = run_dedup(*image_stage(root2, ws2, ONE), exact_only=True)
    assert grown.outputs[0].read_bytes() == cold.outputs[0].read_bytes()

    def facts(w: Path) -> list[tuple[object, ...]]:  # without the times and inodes
        return [r[:3] + r[6:] for r in inventory(w)]

    assert facts(ws2) == facts(tmp_path / "ws")
