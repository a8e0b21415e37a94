"""Acting safely: apply, restore, re-checks, crash recovery, locking."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import jpeg_bytes, photo, write
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.errors import WeaklabelError
from weaklabel.images import quarantine
from weaklabel.images.dedup import run_dedup
from weaklabel.images.purge import image_stage, run_purge
from weaklabel.images.quarantine import Move, plan_moves, read_journal, run_restore
from weaklabel.workspace import Workspace

SRC = str(Path(__file__).resolve().parents[2] / "src")


def files_under(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
            if not os.path.islink(os.path.join(d, f))}


def test_purge_apply_moves_corrupt_files_and_restore_puts_them_back(
    tree: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    before = files_under(tree)
    res = run_purge(*image_stage(tree, ws))
    assert res.summary.applied is None and files_under(tree) == before  # plan only
    res = run_purge(*image_stage(tree, ws), apply=True)
    assert res.summary.applied is not None and len(res.summary.applied.moved) == 9
    after = files_under(tree)
    assert "bad/trunc.jpg" not in after and "20190303/a.jpg" in after
    qdir = ws / "quarantine" / res.summary.applied.run_id
    assert (qdir / "bad" / "trunc.jpg").exists()
    # second run: nothing left to move
    again = run_purge(*image_stage(tree, ws), apply=True)
    assert again.summary.applied is not None and again.summary.applied.moved == ()
    rep = run_restore(Workspace(ws))
    assert len(rep.summary.restored) == 9 and files_under(tree) == before
    assert run_restore(Workspace(ws)).summary.restored == ()  # idempotent


def test_apply_on_names_that_are_not_utf8_writes_its_meta_and_restores(tmp_path: Path) -> None:
    root = tmp_path / "img"
    pic = jpeg_bytes(photo(1))
    write(root / "d" / "kept.jpg", pic)
    bad = os.fsencode(root / "d") + b"/copy\xff\xfe.jpg"
    with open(bad, "wb") as f:
        f.write(pic)  # an exact duplicate under a name that is not UTF-8
    with open(os.fsencode(root / "d") + b"/cut\xfe\nx.jpg", "wb") as f:
        f.write(pic[:300])  # truncated, and a newline too
    before = files_under(root)
    ws = tmp_path / "ws"
    res = run_purge(*image_stage(root, ws), apply=True)
    assert res.summary.applied is not None and len(res.summary.applied.moved) == 1
    meta = json.loads((ws / "purge.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["summary"]["applied"]["moved"] == ["d/cut\\xfe\nx.jpg"]
    res = run_dedup(*image_stage(root, ws), apply=True)
    assert res.summary.applied is not None and len(res.summary.applied.moved) == 1
    meta = json.loads((ws / "duplicates.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["summary"]["applied"]["moved"] == ["d/copy\\xff\\xfe.jpg"]
    assert files_under(root) == {"d/kept.jpg"}
    assert len(run_restore(Workspace(ws)).summary.restored) == 2
    assert files_under(root) == before


def test_restore_refuses_to_overwrite_a_file_that_came_back(tmp_path: Path) -> None:
    root = tmp_path / "img"
    write(root / "bad.jpg", b"<html>")
    ws = tmp_path / "ws"
    run_purge(*image_stage(root, ws), apply=True)
    write(root / "bad.jpg", b"new content")
    rep = run_restore(Workspace(ws))
    assert rep.summary.restored == () and rep.summary.conflicts[0][0] == "bad.jpg"
    assert (root / "bad.jpg").read_bytes() == b"new content"
    with pytest.raises(WeaklabelError, match="known runs"):
        run_restore(Workspace(ws), run="nope")


def test_dedup_apply_keeps_one_copy_and_cancels_group_if_kept_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "img"
    data = jpeg_bytes(photo(1))
    for d in ("20190301", "20190302", "20190303"):
        write(root / d / "x.jpg", data)
    other = jpeg_bytes(photo(2))
    write(root / "20190301" / "y.jpg", other)
    write(root / "20190302" / "y.jpg", other)
    ws = tmp_path / "ws"
    run_dedup(*image_stage(root, ws))  # plan
    # the kept copy of the y group changes between plan and move: that group is cancelled
    real = quarantine._unchanged

    def touched(path: str, size: int | None, mtime: int | None) -> str | None:
        if path.endswith("20190301/y.jpg"):
            return "changed since it was examined"
        return real(path, size, mtime)

    monkeypatch.setattr(quarantine, "_unchanged", touched)
    res = run_dedup(*image_stage(root, ws), apply=True)
    assert res.summary.applied is not None
    assert sorted(res.summary.applied.moved) == ["20190302/x.jpg", "20190303/x.jpg"]
    assert [p for p, _ in res.summary.applied.cancelled] == ["20190302/y.jpg"]
    assert (root / "20190301" / "x.jpg").exists() and (root / "20190302" / "y.jpg").exists()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from("abcdefgh")), max_size=30))
def test_plan_never_moves_a_kept_file(pairs) -> None:
    moves, kept_of = [], {}
    for g, name in pairs:
        kept_of.setdefault(g, f"k{g}")
        moves.append(Move(src=f"{g}/{name}", size=1, mtime_ns=1, group=g, kept=kept_of[g]))
    uniq = {m.src: m for m in moves}.values()
    plan = plan_moves(uniq)
    assert not {m.src for m in plan} & {m.kept for m in plan}
    with pytest.raises(ValueError):
        plan_moves([Move(src="k0", size=1, mtime_ns=1, group=0, kept="k1"),
                    Move(src="k1", size=1, mtime_ns=1, group=1, kept="k0")])


def test_cross_device_move_copies_verifies_and_unlinks(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "img"
    write(root / "d" / "bad.jpg", b"<html>" * 100)
    real_rename = os.rename
    calls = []

    def rename(src: str, dst: str) -> None:
        calls.append(src)
        if not str(src).endswith(quarantine.PART):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_rename(src, dst)

    monkeypatch.setattr(quarantine.os, "rename", rename)
    res = run_purge(*image_stage(root, tmp_path / "ws"), apply=True)
    assert res.summary.applied is not None and res.summary.applied.moved == ("d/bad.jpg",)
    assert not (root / "d" / "bad.jpg").exists()
    q = tmp_path / "ws" / "quarantine" / res.summary.applied.run_id / "d" / "bad.jpg"
    assert q.read_bytes() == b"<html>" * 100


def test_second_concurrent_run_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "img"
    write(root / "a.jpg", b"")
    ws = Workspace(tmp_path / "ws")
    with ws.lock("test"), pytest.raises(WeaklabelError, match="in use by another"):
        run_purge(*image_stage(root, ws.root))


def test_recover_settles_open_intents(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    j = quarantine.Journal(ws.path("quarantine") / "journal.jsonl")
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x")  # intent 1: never moved
    b_dst = tmp_path / "q" / "b"
    b_dst.parent.mkdir()
    b_dst.write_bytes(b"y")  # intent 2: moved, done not written
    j.write({"op": "intent", "id": "r:1", "action": "quarantine", "run": "r", "src": str(a),
             "dst": str(tmp_path / "q" / "a"), "rel": "a", "sha1": None})
    j.write({"op": "intent", "id": "r:2", "action": "quarantine", "run": "r", "src": str(b),
             "dst": str(b_dst), "rel": "b", "sha1": None})
    j.close()
    with open(ws.path("quarantine") / "journal.jsonl", "a") as f:
        f.write('{"op": "do')  # torn last line
    assert quarantine.recover(ws) == 2
    recs = read_journal(ws.path("quarantine") / "journal.jsonl")
    assert {r["op"] for r in recs if r.get("id") == "r:1"} == {"intent", "abort"}
    assert {r["op"] for r in recs if r.get("id") == "r:2"} == {"intent", "done"}


@pytest.mark.slow
def test_kill_9_mid_apply_loses_nothing_and_rerun_finishes(tmp_path: Path) -> None:
    root = tmp_path / "img"
    names = [f"2019030{d}/bad{k}.jpg" for d in range(1, 4) for k in range(8)]
    for n in names:
        write(root / n, b"<html>error</html>" + n.encode())
    write(root / "good.jpg", jpeg_bytes(photo(1)))
    ws = tmp_path / "ws"
    code = (f"import sys; sys.path.insert(0, {SRC!r})\n"
            "from weaklabel.images.purge import image_stage, run_purge\n"
            f"run_purge(*image_stage({str(root)!r}, {str(ws)!r}), apply=True)\n")
    env = {**os.environ, quarantine.DELAY_ENV: "0.15"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    journal = ws / "quarantine" / "journal.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline:
        if journal.exists() and journal.read_text().count('"intent"') >= 6:
            break
        time.sleep(0.02)
    time.sleep(0.07)  # land inside a move's window
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    qroot = ws / "quarantine"

    def located(n: str) -> int:
        in_place = (root / n).exists()
        in_q = sum(1 for run in qroot.iterdir() if run.is_dir() and (run / n).exists())
        return int(in_place) + in_q

    assert all(located(n) == 1 for n in names)  # never both, never neither
    moved_before = sum(1 for n in names if not (root / n).exists())
    assert 0 < moved_before < len(names)
    res = run_purge(*image_stage(root, ws), apply=True)
    assert res.summary.applied is not None and res.summary.applied.recovered >= 1
    assert all(not (root / n).exists() and located(n) == 1 for n in names)
    recs = read_journal(journal)
    assert not quarantine._open_intents(recs)
    assert (root / "good.jpg").exists()
    rep = run_restore(Workspace(ws))
    assert len(rep.summary.restored) == len(names) and all((root / n).exists() for n in names)
    assert json.loads(journal.read_text().splitlines()[-1])["op"] == "done"


def _children(pid: int) -> list[int]:
    """The processes ``pid`` forked (Linux ``/proc``)."""
    kids: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            kids += map(int, Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return kids


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_purge_killed_with_9_leaves_the_lock_free_while_its_workers_wind_down(
        tmp_path: Path) -> None:
    """The image pool's workers are forked inside the workspace lock: without closing
    their copies of its descriptor they held the lock after ``kill -9`` of the run (~1 s,
    until they noticed), and an immediate re-run was refused naming the dead pid."""
    root = tmp_path / "img"
    for k in range(64):
        write(root / f"{k:03d}.jpg", jpeg_bytes(photo(k, (48, 32))))
    ws = tmp_path / "ws"
    argv = ["weaklabel", "purge", str(root), "-w", str(ws), "-j", "2", "-q"]
    code = f"import sys; from weaklabel.cli_fast import main; sys.argv = {argv!r}; main()"
    proc = subprocess.Popen([sys.executable, "-c", code])
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while len(workers) < 2 and proc.poll() is None and time.time() < deadline:
            workers = _children(proc.pid)
            time.sleep(0.005)
        assert len(workers) == 2, "the run ended before its workers could be seen"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        still = [w for w in workers if Path(f"/proc/{w}").exists()]
        with Workspace(ws).lock("purge"):  # at once: no "in use by another weaklabel run"
            pass
        assert still, "the workers were gone already: nothing was shown"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for w in workers:  # the orphans this test made, by their pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)


def test_a_run_id_in_the_journal_is_not_given_again(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed between its intents and its first move leaves no folder; the run
    that settles it, started within the same second, must not share its id (restore
    then took one file back twice)."""
    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setattr(quarantine.time, "strftime", lambda fmt: "20200101T000000")
    assert quarantine.new_run_id(ws, "purge") == "purge-20200101T000000"
    j = quarantine.Journal(quarantine.quarantine_dir(ws) / quarantine.JOURNAL)
    j.write({"op": "intent", "id": "purge-20200101T000000:0", "run": "purge-20200101T000000"})
    j.close()
    assert not (quarantine.quarantine_dir(ws) / "purge-20200101T000000").exists()
    assert quarantine.new_run_id(ws, "purge") == "purge-20200101T000000-2"
