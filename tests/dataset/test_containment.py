"""Containment: nothing outside the image root ever reaches the data set (issue 7, case 1).

The tree is real (files made with PIL, real symlinks), and purge, sample and export are
the real stages; only the labels are written by hand, as propagate would write them.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from weaklabel.config import Config, with_overrides
from weaklabel.contracts import IMAGE_LABELS
from weaklabel.dataset.export import run_export
from weaklabel.dataset.report import run_report
from weaklabel.dataset.sample import run_sample
from weaklabel.errors import WeaklabelError
from weaklabel.images.purge import image_stage, run_purge
from weaklabel.workspace import Workspace


def photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((4, 5, 3)) * 255).astype("uint8")).resize(
        (96, 72), Image.Resampling.BICUBIC)


def jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()

PASSWD = Path("/etc/passwd")


def _tree(tmp_path: Path) -> tuple[Path, Path, Config, list[str]]:
    root = tmp_path / "images"
    (root / "20190301").mkdir(parents=True)
    (root / "weird").mkdir()
    for i in range(3):
        (root / "20190301" / f"ok{i}.jpg").write_bytes(jpeg(photo(i)))
    os.symlink("/etc", root / "weird" / "etc_dir")           # a folder leaving the root
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg(photo(9)))     # a real image, outside
    os.symlink(outside / "secret.jpg", root / "20190301" / "link.jpg")
    os.symlink(outside, root / "20190302")                   # a symlinked date folder
    images = ["20190301/ok0.jpg", "20190301/ok1.jpg", "20190301/ok2.jpg",
              "weird/etc_dir/passwd", "20190301/link.jpg", "20190302/secret.jpg"]
    ws = Workspace(tmp_path / "ws").ensure()
    n = len(images)
    ws.write("image_labels.parquet", pd.DataFrame({
        # the hostile rows are the most engaging: they would be sampled first
        "image": images, "post_id": [f"p{i}" for i in range(n)], "label": ["lips"] * n,
        "confidence": [0.9] * n, "likes": pd.array([1, 2, 3, 900, 800, 700], dtype="Int64"),
        "comments": pd.array([0] * n, dtype="Int64")}), IMAGE_LABELS)
    cfg = with_overrides(Config(), {"workspace": str(ws.root), "sample.per_label": 100,
                                    "sample.per_post": 0, "export.split": (1.0,)})
    return root, ws.root, cfg, images


def _exported(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() or p.is_symlink()]


@pytest.mark.parametrize("link", ["hardlink", "copy", "symlink"])
def test_export_never_takes_a_file_from_outside_the_root(tmp_path: Path, link: str) -> None:
    root, ws, cfg, _ = _tree(tmp_path)
    cfg = with_overrides(cfg, {"export.link": link})
    run_purge(*image_stage(root, ws, cfg))
    run_sample(Workspace(ws), cfg)
    out = tmp_path / "dataset"
    res = run_export(Workspace(ws), with_overrides(cfg, {"output": str(out),
                                                         "images.root": str(root)})).summary
    assert sum(sum(c.values()) for c in res.counts.values()) == 3
    passwd = PASSWD.stat()
    secret = (tmp_path / "outside" / "secret.jpg").read_bytes()
    for f in _exported(out):
        st = f.stat()
        assert (st.st_ino, st.st_dev) != (passwd.st_ino, passwd.st_dev), f
        if f.suffix == ".jpg":
            assert f.read_bytes() != secret, f
            assert os.path.realpath(f).startswith(str(root.resolve()) + os.sep) or \
                not f.is_symlink()
    text = "".join(p.read_text(encoding="utf-8") for p in (out / "manifest.jsonl",
                                                             out / "dataset.csv"))
    assert "passwd" not in text and "secret" not in text and "link.jpg" not in text


def test_sample_takes_only_images_purge_saw_and_marked_ok(tmp_path: Path) -> None:
    root, ws, cfg, images = _tree(tmp_path)
    run_purge(*image_stage(root, ws, cfg))
    res = run_sample(Workspace(ws), cfg)
    df = pd.read_parquet(ws / "sample.parquet")
    assert sorted(df["image"]) == images[:3]
    total = res.summary.funnel[-1]
    assert total.labelled == 6 and total.after_purge == 3


def test_export_rechecks_every_file_at_link_time(tmp_path: Path) -> None:
    """A file swapped for a symlink, or a folder for a link out, after purge and sample:
    export's own check at link time catches it and lists it in the rejects."""
    root, ws, cfg, _ = _tree(tmp_path)
    run_purge(*image_stage(root, ws, cfg))
    run_sample(Workspace(ws), cfg)
    (root / "20190301" / "ok0.jpg").unlink()
    os.symlink(PASSWD, root / "20190301" / "ok0.jpg")
    p1 = root / "20190301" / "ok1.jpg"
    p1.write_bytes(p1.read_bytes() + b"\0")        # changed since the inventory saw it
    out = tmp_path / "dataset"
    res = run_export(Workspace(ws), with_overrides(cfg, {"output": str(out),
                                                         "images.root": str(root)})).summary
    assert sum(sum(c.values()) for c in res.counts.values()) == 1
    why = dict(res.rejects)
    assert "symbolic link" in why["20190301/ok0.jpg"]
    assert "changed" in why["20190301/ok1.jpg"]
    rejects = (ws / "export.rejects.csv").read_text(encoding="utf-8")
    assert "20190301/ok0.jpg" in rejects and "20190301/ok1.jpg" in rejects
    passwd = PASSWD.stat()
    assert all((f.stat().st_ino, f.stat().st_dev) != (passwd.st_ino, passwd.st_dev)
               for f in _exported(out))


def test_export_without_an_inventory_refuses_to_link(tmp_path: Path) -> None:
    root, ws, cfg, _ = _tree(tmp_path)
    run_sample(Workspace(ws), cfg)  # no purge: sample keeps every row, with a note
    with pytest.raises(WeaklabelError, match=r"inventory.sqlite.*run `weaklabel purge"):
        run_export(Workspace(ws), with_overrides(cfg, {"output": str(tmp_path / "dataset"),
                                                       "images.root": str(root)}))
    assert not (tmp_path / "dataset").exists()


def test_report_shows_no_thumbnail_from_outside_the_root(tmp_path: Path) -> None:
    root, ws, cfg, _ = _tree(tmp_path)
    cfg = with_overrides(cfg, {"sample.per_label": 100})
    run_sample(Workspace(ws), cfg)  # every row sampled, the hostile ones first
    res = run_report(Workspace(ws), with_overrides(cfg, {"images.root": str(root)})).summary
    assert res.made == 3, res
    thumbs = [json.dumps(p.name) for p in (ws / "thumbs").rglob("*") if p.is_file()]
    assert len(thumbs) == 3
