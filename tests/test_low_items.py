"""The "Low" items of issue 7, case 6, each through the real CLI or stage.

The disk-full case mounts a real 1 MiB tmpfs as the workspace (the suite runs as root,
as CI does), so the quarantine copy crosses devices and truly runs out of space; the
read-only case marks the workspace immutable with chattr, which stops root too.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weaklabel.cli import app
from weaklabel.errors import WeaklabelError
from weaklabel.images.quarantine import JOURNAL, Journal, read_journal
from weaklabel.workspace import Workspace

runner = CliRunner()


def run(*args: object):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_disk_full_purge_exits_1_names_the_file_and_leaves_no_part_files(
        tmp_path: Path, small_fs: Path) -> None:
    root = tmp_path / "img"
    root.mkdir()
    (root / "big.jpg").write_bytes(b"<html>" + b"x" * 3_000_000)  # not an image, 3 MB
    (root / "small.jpg").write_bytes(b"<html>small</html>")
    ws = small_fs / "ws"
    r = run("purge", root, "-w", ws, "--apply", "-q")
    assert r.exit_code == 1, r.output
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("Error: 1 file(s) could not be moved")
    assert "big.jpg" in err and "No space left on device" in err
    assert (root / "big.jpg").stat().st_size == 3_000_006  # still in place, whole
    assert not (root / "small.jpg").exists()               # the one that fit is moved
    parts = [p for p in (ws / "quarantine").rglob("*") if p.name.endswith(".weaklabel-part")]
    assert parts == []


def test_a_torn_journal_line_is_dropped_once_not_warned_about_forever(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    jpath = ws.path("quarantine") / JOURNAL
    jpath.parent.mkdir()
    good = json.dumps({"op": "abort", "id": "x:0", "why": "test"})
    jpath.write_text(good + "\n" + '{"op": "inte', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        Journal(jpath).close()
        Journal(jpath).close()
        for _ in range(3):
            assert read_journal(jpath) == [json.loads(good)]
    torn = [r for r in caplog.records if "torn" in r.message]
    assert len(torn) == 1
    assert jpath.read_text(encoding="utf-8") == good + "\n"


def test_restore_conflicts_go_to_stderr(tmp_path: Path) -> None:
    root = tmp_path / "img"
    root.mkdir()
    (root / "bad.jpg").write_bytes(b"<html>")
    ws = tmp_path / "ws"
    assert run("purge", root, "-w", ws, "--apply", "-q").exit_code == 0
    (root / "bad.jpg").write_bytes(b"came back")
    r = run("restore", "-w", ws, "-q")
    assert r.exit_code == 1
    assert "not restored: bad.jpg" in r.stderr and "not restored" not in r.stdout


def test_source_prefix_with_a_newline_is_a_usage_error(tmp_path: Path) -> None:
    r = run("export", tmp_path / "out", "-w", tmp_path / "ws", "--format", "manifest",
            "--source-prefix", "s3://bucket/\nrm -rf")
    assert r.exit_code == 2
    assert r.stderr.startswith("Error: command-line option: export.source_prefix must be "
                               "a URI") and r.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_dev_zero_or_a_fifo_as_the_posts_table(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        path = tmp_path / "posts.csv"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    r = run("tokenize", path, "-w", tmp_path / "ws", "-q")
    assert r.exit_code == 1
    want = "is a FIFO (named pipe), not a file" if kind == "fifo" else "is a device, not a file"
    assert r.stderr.startswith(f"Error: posts table {path} {want}")


def _sampled(fx_ws: Path, tmp_path: Path) -> Path:
    """A tiny real workspace ready for export: labels, purge, sample."""
    import pandas as pd

    from weaklabel.config import Config, with_overrides
    from weaklabel.contracts import IMAGE_LABELS
    from weaklabel.dataset.sample import run_sample
    from weaklabel.images.purge import image_stage, run_purge

    root = tmp_path / "img"
    (root / "20190301").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(root / "20190301/a.jpg")
    ws = Workspace(fx_ws).ensure()
    ws.write("image_labels.parquet", pd.DataFrame({
        "image": ["20190301/a.jpg"], "post_id": ["p1"], "label": ["lips"],
        "confidence": [0.9], "likes": pd.array([1], dtype="Int64"),
        "comments": pd.array([0], dtype="Int64")}), IMAGE_LABELS)
    run_purge(*image_stage(root, ws.root))
    run_sample(ws, with_overrides(Config(), {"workspace": str(ws.root)}))
    return root


def test_export_takes_the_workspace_lock(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    root = _sampled(ws, tmp_path)
    with Workspace(ws).lock("dedup"):  # as if dedup --apply were moving files now
        r = run("export", tmp_path / "out", "-w", ws, "--image-root", root, "-q")
    assert r.exit_code == 1
    assert "in use by another weaklabel run (`weaklabel dedup`" in r.stderr
    assert not (tmp_path / "out").exists()
    assert run("export", tmp_path / "out", "-w", ws, "--image-root", root, "-q").exit_code == 0


def test_export_into_a_read_only_workspace_fails_before_writing(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    root = _sampled(ws, tmp_path)
    subprocess.run(["chattr", "+i", str(ws)], check=True)
    try:
        r = run("export", tmp_path / "out", "-w", ws, "--image-root", root, "-q")
    finally:
        subprocess.run(["chattr", "-i", str(ws)], check=True)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"Error: cannot write to the workspace {ws}")
    assert not (tmp_path / "out").exists()


def test_lock_error_is_a_weaklabel_error_in_the_library(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    with ws.lock("purge"), pytest.raises(WeaklabelError, match="`weaklabel purge`"), \
            ws.lock("sample"):
        pass
