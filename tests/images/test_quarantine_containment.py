"""Quarantine and restore never move a file through a symlink out of its root (issue 7)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from weaklabel.errors import WeaklabelError
from weaklabel.images.purge import image_stage, run_purge
from weaklabel.images.quarantine import Move, apply_moves, run_restore
from weaklabel.workspace import Workspace


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    root, outside = tmp_path / "img", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "bad.jpg").write_bytes(b"<html>not an image</html>")
    (outside / "victim.jpg").write_bytes(b"<html>outside</html>")
    os.symlink(outside, root / "out")
    return root, outside, tmp_path / "ws"


def test_a_planned_move_through_a_symlinked_folder_is_cancelled(tmp_path: Path) -> None:
    root, outside, ws = _setup(tmp_path)
    st = (outside / "victim.jpg").stat()
    plan = [Move(src="out/victim.jpg", size=st.st_size, mtime_ns=st.st_mtime_ns)]
    rep = apply_moves(root, Workspace(ws).ensure(), plan, stage="purge")
    assert rep.moved == [] and "symbolic link" in rep.cancelled[0][1]
    assert (outside / "victim.jpg").exists()


def test_purge_apply_never_moves_what_lies_behind_a_symlink(tmp_path: Path) -> None:
    root, outside, ws = _setup(tmp_path)
    res = run_purge(*image_stage(root, ws), apply=True)
    assert res.summary.applied is not None and res.summary.applied.moved == ("d/bad.jpg",)
    assert (outside / "victim.jpg").exists()


def test_a_quarantine_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    root, outside, ws = _setup(tmp_path)
    Workspace(ws).ensure()
    os.symlink(outside, ws / "quarantine")
    with pytest.raises(WeaklabelError, match=r"quarantine is a symbolic link"):
        run_purge(*image_stage(root, ws), apply=True)
    assert (root / "d" / "bad.jpg").exists() and not (outside / "journal.jsonl").exists()


def _tamper(ws: Path, **change: str) -> None:
    j = ws / "quarantine" / "journal.jsonl"
    lines = [json.loads(x) for x in j.read_text().splitlines()]
    for r in lines:
        if r.get("op") == "intent":
            r.update(change)
    j.write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_restore_refuses_an_original_folder_replaced_by_a_symlink_out(tmp_path: Path) -> None:
    root, outside, ws = _setup(tmp_path)
    run_purge(*image_stage(root, ws), apply=True)
    os.rmdir(root / "d")
    os.symlink(outside, root / "d")  # restoring d/bad.jpg would write into outside/
    rep = run_restore(Workspace(ws))
    assert rep.summary.restored == () and "symbolic link" in rep.summary.conflicts[0][1]
    assert sorted(os.listdir(outside)) == ["victim.jpg"]


@pytest.mark.parametrize("change", [
    {"src": "{outside}/d/bad.jpg", "root": "{outside}"},   # another root, same rel
    {"rel": "../outside/bad.jpg"},                          # a rel that climbs out
    {"src": "{outside}/d/bad.jpg"},                         # src disagrees with root/rel
])
def test_restore_refuses_a_journal_record_pointing_elsewhere(
        tmp_path: Path, change: dict[str, str]) -> None:
    root, outside, ws = _setup(tmp_path)
    run_purge(*image_stage(root, ws), apply=True)
    (outside / "d").mkdir()
    _tamper(ws, **{k: v.format(outside=outside) for k, v in change.items()})
    rep = run_restore(Workspace(ws))
    assert rep.summary.restored == () and rep.summary.conflicts
    assert sorted(os.listdir(outside / "d")) == []


def test_the_inventory_never_reads_through_a_folder_swapped_after_the_walk(
        tmp_path: Path) -> None:
    """The walk saw a plain folder; by the time the file is read it is a link out."""
    from weaklabel.images.checks import Task, examine
    from weaklabel.images.digests import partial_digest

    root, outside, _ = _setup(tmp_path)
    (outside / "d").mkdir()
    (outside / "d" / "bad.jpg").write_bytes((root / "d" / "bad.jpg").read_bytes())
    task = Task(abspath=str(root / "d" / "bad.jpg"), rel="d/bad.jpg", size=1, check=True,
                hash_spec=None, max_pixels=10**8)
    assert examine(task)["status"] == "not_an_image"  # read while the folder is real
    os.rename(root / "d", tmp_path / "d.away")
    os.symlink(outside / "d", root / "d")
    res = examine(task)
    assert res["status"] == "unreadable" and "symbolic link" in res["reason"]
    with pytest.raises(OSError, match="symbolic link"):
        partial_digest(task.abspath, 10, task.rel)
