"""Export: splits, names, the tree, the manifest, the CSV, and never clobbering a folder."""

from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.config import Config, with_overrides
from weaklabel.dataset import export as ex
from weaklabel.dataset.contracts import DATASET, LEDGER
from weaklabel.dataset.export import (
    allocate,
    assign_splits,
    base_name,
    check_label_dirname,
    creation_date_from,
    escape_cell,
    file_names,
    parse_split,
    run_export,
)
from weaklabel.dataset.sample import run_sample
from weaklabel.errors import WeaklabelError
from weaklabel.workspace import Workspace


def export(fx, out: Path, cfg: Config, *, image_root: Path | None = None,  # type: ignore[no-untyped-def]
           creation_date: str | None = None, force: bool = False):
    """``run_export`` into ``out`` (the config's ``output``) from ``image_root``."""
    cfg = with_overrides(cfg, {"output": str(out), "export.creation_date": creation_date,
                               "images.root": str(image_root) if image_root else None})
    return run_export(Workspace(fx.ws), cfg, force=force)


def sampled(fx, **export) -> Config:  # type: ignore[no-untyped-def]
    cfg = with_overrides(Config(), {"workspace": str(fx.ws), "labelmap": str(fx.labelmap)})
    cfg = with_overrides(cfg, {f"export.{k}": v for k, v in export.items()})
    run_sample(Workspace(fx.ws), cfg)
    return cfg


# --- pure functions ------------------------------------------------------------------------


def test_parse_split() -> None:
    assert parse_split("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    assert parse_split((0.9, 0.1)) == (0.9, 0.1)
    for bad in ("0.8,0.3", "a,b", "1,0,0,0", "-0.2,1.2"):
        with pytest.raises(WeaklabelError):
            parse_split(bad)


@given(st.integers(0, 500), st.sampled_from([(0.8, 0.1, 0.1), (0.5, 0.5), (1.0,),
                                             (0.05, 0.9, 0.05)]))
def test_allocate_sums_and_train_first(n, fractions) -> None:  # type: ignore[no-untyped-def]
    counts = allocate(n, fractions)
    assert sum(counts) == n and min(counts) >= 0
    if n:
        assert counts[0] >= 1


@pytest.mark.parametrize("label", ["", ".", "..", "a/b", "a\\b", "a\x00b", "tab\there", ".hidden",
                                   "CON", "nul.txt", "com1", "trail.", "trail ", "a:b", "x" * 256])
def test_unsafe_label_folder_names_are_rejected(label: str) -> None:
    with pytest.raises(WeaklabelError, match="cannot be a folder name"):
        check_label_dirname(label)


@pytest.mark.parametrize("label", ["lips", "입술_화장", "eye-makeup", "other2", "console"])
def test_safe_label_folder_names(label: str) -> None:
    check_label_dirname(label)


def test_file_names_date_prefix_and_collisions() -> None:
    assert base_name("20190303/a.jpg") == "20190303_a.jpg"
    assert base_name("x/y/.b.jpg") == "x_y_.b.jpg"
    assert base_name(".hidden.jpg") == "hidden.jpg"
    assert base_name("d/a:b?.jpg") == "d_a_b_.jpg"
    names = file_names(["20190303/a.jpg", "20190303/sub/a.jpg", "x/20190303/A.JPG",
                        "20190303/a.jpg".replace("a.jpg", "b.jpg")])
    assert names["20190303/a.jpg"] == "20190303_a.jpg"
    assert names["20190303/b.jpg"] == "20190303_b.jpg"
    # same date folder and base name: the later ones get a short hash, case-insensitively
    assert names["20190303/sub/a.jpg"].startswith("20190303_a_") and \
        names["20190303/sub/a.jpg"].endswith(".jpg")
    assert names["x/20190303/A.JPG"].startswith("20190303_A_")
    assert len({n.casefold() for n in names.values()}) == 4


def test_a_name_whose_extension_alone_is_too_long_is_cut_not_looped_on() -> None:
    import subprocess
    import sys

    # run apart: before the fix this never returned
    code = ("from weaklabel.dataset.export import base_name\n"
            "print(base_name('20190303/a.' + 'x' * 240))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.strip()
    assert out.startswith("20190303_a.xxx") and len(out.encode()) == 200
    name = base_name("20190303/" + "가" * 80 + ".jpeg")  # a real extension is kept
    assert name.endswith("가.jpeg") and len(name.encode()) <= 200


def test_escape_cell() -> None:
    for v in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert escape_cell(v) == "'" + v
    assert escape_cell("lips") == "lips" and escape_cell(-3) == -3


def test_creation_date_fallbacks() -> None:
    posts = pd.DataFrame({"created_at": ["2019-03-01 10:00:00", None, "2019-03-09T01:02:03Z"]})
    assert creation_date_from(posts, []) == "2019-03-09T01:02:03.000000"
    assert creation_date_from(None, ["20190301/a.jpg", "20190405/b.jpg"]) == \
        "2019-04-05T00:00:00.000000"
    assert creation_date_from(None, ["a.jpg"]) == ex.DEFAULT_CREATION_DATE


# --- split: properties ---------------------------------------------------------------------

group_sets = st.lists(
    st.tuples(st.sampled_from(["lips", "nails", "other"]), st.integers(1, 3)),  # label, size
    min_size=1, max_size=40,
)


def _groups_frame(groups: list[tuple[str, int]]) -> tuple[pd.DataFrame, dict[str, int]]:
    images, labels, gmap = [], [], {}
    for gid, (lab, size) in enumerate(groups):
        for j in range(size):
            img = f"{20190101 + gid % 28}/g{gid}_{j}.jpg"
            images.append(img)
            labels.append(lab)
            if size > 1:
                gmap[img] = gid
    return pd.DataFrame({"image": images, "label": labels}), gmap


@settings(max_examples=60, deadline=None)
@given(group_sets, st.integers(0, 2**31), st.randoms(use_true_random=False))
def test_split_keeps_groups_together_and_is_deterministic(groups, seed, rnd) -> None:  # type: ignore[no-untyped-def]
    df, gmap = _groups_frame(groups)
    split = assign_splits(df, fractions=(0.6, 0.2, 0.2), seed=seed, groups=gmap)
    by_group: dict[int, set[str]] = {}
    for img, s in zip(df["image"], split, strict=True):
        if img in gmap:
            by_group.setdefault(gmap[img], set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    # same seed, rows in another order: the same split per image
    order = list(range(len(df)))
    rnd.shuffle(order)
    shuffled = df.iloc[order]
    again = assign_splits(shuffled, fractions=(0.6, 0.2, 0.2), seed=seed, groups=gmap)
    assert dict(zip(shuffled["image"], again, strict=True)) == \
        dict(zip(df["image"], split, strict=True))
    # every label with at least 3 groups (any at all, in fact) is present in train
    n_groups: dict[str, int] = {}
    for lab, _ in groups:
        n_groups[lab] = n_groups.get(lab, 0) + 1
    train = set(df.loc[(split == "train").to_numpy(), "label"])
    assert {lab for lab, n in n_groups.items() if n >= 3} <= train


def test_split_is_stratified_and_seed_dependent() -> None:
    df = pd.DataFrame({"image": [f"{i:04d}.jpg" for i in range(200)],
                       "label": ["a"] * 100 + ["b"] * 100})
    s1 = assign_splits(df, fractions=(0.8, 0.1, 0.1), seed=1)
    for lab in ("a", "b"):
        assert s1[df["label"] == lab].value_counts().to_dict() == \
            {"train": 80, "val": 10, "test": 10}
    s2 = assign_splits(df, fractions=(0.8, 0.1, 0.1), seed=2)
    assert (s1 != s2).any()


# --- run_export ----------------------------------------------------------------------------


def test_a_wrong_image_root_is_an_error_not_an_empty_data_set(  # type: ignore[no-untyped-def]
        fx, tmp_path: Path) -> None:
    cfg = sampled(fx, split=(1.0,))
    out = tmp_path / "dataset"
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(WeaklabelError, match=r"cannot verify the sampled images: .* built "
                                             r"for another image root; run `weaklabel purge "
                                             r".*elsewhere"):
        export(fx, out, cfg, image_root=tmp_path / "elsewhere")
    assert not out.exists()


def test_an_empty_sample_is_named_not_a_traceback(  # type: ignore[no-untyped-def]
        fx, tmp_path: Path) -> None:
    # `sample --per-label 0` then `export` was KeyError: 'split'
    cfg = with_overrides(Config(), {"workspace": str(fx.ws), "labelmap": str(fx.labelmap),
                                    "sample.per_label": 0})
    assert run_sample(Workspace(fx.ws), cfg).rows["sample.parquet"] == 0
    out = tmp_path / "dataset"
    with pytest.raises(WeaklabelError, match=r"sample.parquet holds no image, nothing to "
                                             r"export; sample with --per-label 1 or more"):
        export(fx, out, cfg, image_root=fx.root)
    assert not out.exists() and not list(tmp_path.glob(".dataset.weaklabel-tmp-*"))


def test_export_tree_manifest_csv(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx, split=(1.0,))
    out = tmp_path / "dataset"
    (fx.root / "20190302/p02.jpg").unlink()  # sampled, then gone before export
    res = export(fx, out, cfg, image_root=fx.root)
    # counted, reported, not a crash
    assert [m[0] for m in res.summary.rejects] == ["20190302/p02.jpg"]
    rejects = (fx.ws / "export.rejects.csv").read_text(encoding="utf-8")
    assert "20190302/p02.jpg,source image not found" in rejects
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "train/lips/20190301_p01_a.jpg" in files
    assert "train/lips/misc_evil.jpg" in files
    assert "train/nails/20190304_p06.jpg" in files
    assert {"manifest.jsonl", "classes.json", "dataset.csv", LEDGER} <= set(files)
    # hard links on one file system
    assert os.stat(out / "train/nails/20190304_p06.jpg").st_ino == \
        os.stat(fx.root / "20190304/p06.jpg").st_ino
    assert res.summary.links == {"hardlink": sum(res.summary.counts["train"].values())}

    classes = json.loads((out / "classes.json").read_text(encoding="utf-8"))
    assert classes == {"0": {"label": "lips", "name": "입술 화장"},
                       "1": {"label": "nails", "name": "네일"},
                       "2": {"label": "other", "name": "기타"}}
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text(encoding="utf-8")
             .splitlines()]
    assert len(lines) == len(files) - 4
    first = lines[0]
    assert first["source-ref"] == "train/lips/20190301_p01_a.jpg"
    assert first["weaklabel"] == 0
    meta = first["weaklabel-metadata"]
    assert meta == {"class-name": "입술 화장", "confidence": 0.95, "human-annotated": "no",
                    "type": "groundtruth/image-classification",
                    "job-name": "labeling-job/weaklabel",
                    "creation-date": "2019-03-08T23:59:59.000000"}  # newest post

    with open(out / "dataset.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == DATASET.names
    evil = next(r for r in rows if r["source"] == "misc/evil.jpg")
    assert evil["post_id"] == "'=cmd"  # a spreadsheet would run =cmd as a formula
    p04 = [r for r in rows if r["source"] == "20190303/p04.jpg"]
    assert p04 == []
    ledger = json.loads((out / LEDGER).read_text(encoding="utf-8"))
    assert sorted(ledger["files"]) == sorted(f for f in files if f != LEDGER)


def test_export_is_deterministic(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    a, b = tmp_path / "a", tmp_path / "b"
    export(fx, a, cfg, image_root=fx.root)
    export(fx, b, cfg, image_root=fx.root)
    for name in ("manifest.jsonl", "dataset.csv", "classes.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    tree = lambda p: sorted(str(x.relative_to(p)) for x in p.rglob("*"))  # noqa: E731
    assert tree(a) == tree(b)


def test_export_source_prefix_and_formats(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx, formats=("manifest",), source_prefix="s3://bucket/download/",
                  job_name="beauty-v1")
    out = tmp_path / "m"
    export(fx, out, cfg, creation_date="2020-01-02")
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.jsonl", "classes.json",
                                                            LEDGER])
    line = json.loads((out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert line["source-ref"].startswith("s3://bucket/download/2019")
    assert "beauty-v1" in line and line["beauty-v1-metadata"]["job-name"] == \
        "labeling-job/beauty-v1"
    assert line["beauty-v1-metadata"]["creation-date"] == "2020-01-02T00:00:00.000000"


def test_export_copies_when_hard_link_crosses_devices(fx, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object, **kw: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(ex.os, "link", no_link)
    cfg = sampled(fx)
    res = export(fx, tmp_path / "c", cfg, image_root=fx.root)
    assert set(res.summary.links) == {"copy"}
    f = next((tmp_path / "c").rglob("20190304_p06.jpg"))
    assert os.stat(f).st_ino != os.stat(fx.root / "20190304/p06.jpg").st_ino
    assert f.read_bytes() == (fx.root / "20190304/p06.jpg").read_bytes()


def test_export_symlink_mode(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx, link="symlink")
    export(fx, tmp_path / "s", cfg, image_root=fx.root)
    f = next((tmp_path / "s").rglob("20190304_p06.jpg"))
    assert f.is_symlink() and f.resolve() == (fx.root / "20190304/p06.jpg").resolve()


def test_export_refuses_non_empty_folder(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(WeaklabelError, match="not empty"):
            export(fx, out, cfg, image_root=fx.root, force=force)
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert not list(tmp_path.glob(".busy.weaklabel-tmp-*"))


def test_export_force_replaces_only_its_own_files(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    out = tmp_path / "again"
    first = export(fx, out, cfg, image_root=fx.root)
    assert not first.up_to_date and first.summary.replaced == 0
    assert json.loads((tmp_path / "again.meta.json").read_text())["stage"] == "export"
    again = export(fx, out, cfg, image_root=fx.root)  # same inputs and settings
    assert again.up_to_date and again.summary == first.summary
    # stale, and this workspace's own export: replaced without --force
    res = export(fx, out, with_overrides(cfg, {"export.seed": 7}), image_root=fx.root)
    assert not res.up_to_date and res.summary.replaced > 0
    res = export(fx, out, cfg, image_root=fx.root, force=True)  # --force re-exports
    assert not res.up_to_date and res.summary.replaced > 0
    (out / "train" / "mine.txt").write_text("a person's file")
    with pytest.raises(WeaklabelError, match="weaklabel did not write, e.g. 'train/mine.txt'"):
        export(fx, out, cfg, image_root=fx.root, force=True)
    assert (out / "train" / "mine.txt").exists()
    assert (fx.root / "20190304/p06.jpg").exists()  # sources untouched throughout


def test_an_export_another_workspace_made_is_replaced_only_with_force(  # type: ignore[no-untyped-def]
        fx, tmp_path: Path) -> None:
    cfg = sampled(fx)
    out = tmp_path / "theirs"
    export(fx, out, cfg, image_root=fx.root)
    ledger = json.loads((out / LEDGER).read_text(encoding="utf-8"))
    (out / LEDGER).write_text(json.dumps({**ledger, "workspace": "/elsewhere"}))
    before = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(WeaklabelError, match="is not empty; pick an empty folder, or pass "
                                             "--force"):
        export(fx, out, with_overrides(cfg, {"export.seed": 7}), image_root=fx.root)
    assert (out / "manifest.jsonl").read_bytes() == before
    res = export(fx, out, cfg, image_root=fx.root, force=True)
    assert res.summary.replaced > 0


def test_an_emptied_export_folder_is_not_up_to_date(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    out = tmp_path / "gone"
    export(fx, out, cfg, image_root=fx.root)
    import shutil

    shutil.rmtree(out)
    res = export(fx, out, cfg, image_root=fx.root)
    assert not res.up_to_date and (out / "manifest.jsonl").is_file()


def test_export_ledger_cannot_delete_outside(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    out = tmp_path / "evil"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / LEDGER).write_text(json.dumps({"tool": "weaklabel", "files": [
        "../victim.txt", str(victim), "train/x.jpg"], "dirs": ["..", "/"]}))
    export(fx, out, cfg, image_root=fx.root, force=True)
    assert victim.read_text() == "keep me"


def test_export_rejects_unsafe_label(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    df = pd.read_parquet(fx.ws / "sample.parquet")
    df.loc[df["label"] == "other", "label"] = "../other"
    df.to_parquet(fx.ws / "sample.parquet", index=False)
    with pytest.raises(WeaklabelError, match=r"label '\.\./other' cannot be a folder name"):
        export(fx, tmp_path / "x", cfg, image_root=fx.root)
    assert not (tmp_path / "x").exists()


def test_export_needs_image_root_for_imagefolder(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    with pytest.raises(WeaklabelError, match="no image root"):
        export(fx, tmp_path / "x", cfg)


def test_export_never_splits_a_duplicate_group(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Without dedup filtering at sampling time, the twins are both sampled; export must
    # still put p06, p07 and p08 in one split.
    cfg = with_overrides(Config(), {"workspace": str(fx.ws), "labelmap": str(fx.labelmap),
                                    "export.split": (0.34, 0.33, 0.33)})
    dups = (fx.ws / "duplicates.csv").read_text()
    (fx.ws / "duplicates.csv").unlink()
    run_sample(Workspace(fx.ws), cfg)
    (fx.ws / "duplicates.csv").write_text(dups)
    export(fx, tmp_path / "g", cfg, image_root=fx.root)
    with open(tmp_path / "g" / "dataset.csv", encoding="utf-8") as f:
        rows = {r["source"]: r["split"] for r in csv.DictReader(f)}
    twins = {rows[i] for i in ("20190304/p06.jpg", "20190305/p07.jpg", "20190305/p08.jpg")}
    assert len(twins) == 1


def test_a_killed_exports_staging_folder_is_removed_by_the_next_run(  # type: ignore[no-untyped-def]
        fx, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    cfg = sampled(fx)
    out = tmp_path / "killed"
    src = str(Path(__file__).resolve().parents[2] / "src")
    # a real export, killed -9 once its staging folder holds the whole data set
    code = (f"import os, signal, sys; sys.path.insert(0, {src!r})\n"
            "from weaklabel.config import Config, with_overrides\n"
            "from weaklabel.dataset import export as ex\n"
            "from weaklabel.workspace import Workspace\n"
            "ex._swap_in = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"cfg = with_overrides(Config(), {{'workspace': {str(fx.ws)!r}, "
            f"'labelmap': {str(fx.labelmap)!r}, 'output': {str(out)!r}, "
            f"'images.root': {str(fx.root)!r}}})\n"
            f"ex.run_export(Workspace({str(fx.ws)!r}), cfg)\n")
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    left = list(tmp_path.glob(".killed.weaklabel-tmp-*"))
    assert len(left) == 1 and any(p.is_file() for p in left[0].rglob("*.jpg"))
    assert (left[0] / ex.OWNER).is_file()  # made by that run, on this host
    live = tmp_path / f".killed.weaklabel-tmp-{os.getppid()}"  # a run still going
    live.mkdir()
    # a dead pid, but no marker (a user's own folder) or another host's marker (a run
    # there, sharing this folder over NFS): neither is ever removed
    dead = []
    for _ in range(2):
        child = subprocess.Popen([sys.executable, "-c", ""])
        child.wait()  # reaped: its pid runs nothing now
        dead.append(child.pid)
    elsewhere = tmp_path / f".killed.weaklabel-tmp-{dead[0]}"
    elsewhere.mkdir()
    (elsewhere / ex.OWNER).write_text(json.dumps({"host": "not-this-host", "pid": dead[0]}))
    users = tmp_path / f".killed.weaklabel-tmp-{dead[1]}"
    users.mkdir()
    (users / "mine.txt").write_text("keep")
    res = export(fx, out, cfg, image_root=fx.root)
    assert res.summary.images > 0 and (out / LEDGER).is_file()
    assert not (out / ex.OWNER).exists()
    assert sorted(tmp_path.glob(".killed.weaklabel-tmp-*")) == sorted([live, elsewhere, users])


def test_a_staging_name_with_no_real_pid_is_left_alone(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = sampled(fx)
    out = tmp_path / "out"
    odd = tmp_path / ".out.weaklabel-tmp-99999999999999999999"
    odd.mkdir()
    res = export(fx, out, cfg, image_root=fx.root)
    assert res.summary.images > 0 and odd.is_dir()


def test_file_names_append_the_real_formats_extension() -> None:
    fmts = {"20190301/abc123": "JPEG", "20190301/x.png": "JPEG", "20190301/y.JPEG": "JPEG",
            "20190301/z.jfif": "JPEG", "20190301/w.jpg": "WEBP", "20190301/m.jpg": "MPO",
            "20190301/g.gif": "GIF"}
    names = file_names(list(fmts), fmts)
    assert names == {"20190301/abc123": "20190301_abc123.jpg",
                     "20190301/x.png": "20190301_x.png.jpg",
                     "20190301/y.JPEG": "20190301_y.JPEG",
                     "20190301/z.jfif": "20190301_z.jfif.jpg",  # ImageFolder skips .jfif
                     "20190301/w.jpg": "20190301_w.jpg.webp",
                     "20190301/m.jpg": "20190301_m.jpg",
                     "20190301/g.gif": "20190301_g.gif"}
    # the collision rule sees the final name: `a` (a JPEG) and `a.jpg` meet as a.jpg;
    # `a.jpg` keeps the name it had before extensions were added, `a` takes the suffix
    twins = file_names(["20190301/a", "20190301/a.jpg"],
                       {"20190301/a": "JPEG", "20190301/a.jpg": "JPEG"})
    assert twins["20190301/a.jpg"] == "20190301_a.jpg"
    assert re.fullmatch(r"20190301_a_[0-9a-f]{8}\.jpg", twins["20190301/a"])
    # an over-long name is cut in its stem, and keeps the extension it was given
    long = file_names(["20190301/" + "n" * 300], {"20190301/" + "n" * 300: "PNG"})
    assert next(iter(long.values())).endswith("n.png")


def test_export_names_each_image_by_its_real_format_and_warns_of_gifs(  # type: ignore[no-untyped-def]
        fx_bare, tmp_path: Path, caplog) -> None:
    from PIL import Image

    from weaklabel.contracts import IMAGE_LABELS
    from weaklabel.images.purge import image_stage, run_purge

    def encoded(colour: tuple[int, int, int], fmt: str) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), colour).save(buf, fmt)
        return buf.getvalue()

    fx = fx_bare  # labels only; purge runs below, once the new files are in place
    extra = {"20190310/abc123": encoded((200, 30, 30), "JPEG"),  # a dump's bare name
             "20190310/x.png": encoded((30, 200, 30), "JPEG"),  # a JPEG under .png
             "20190310/anim.gif": encoded((30, 30, 200), "GIF")}
    for rel, data in extra.items():
        (fx.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (fx.root / rel).write_bytes(data)
    ws = Workspace(fx.ws)
    il = ws.read("image_labels.parquet", IMAGE_LABELS)
    new = pd.DataFrame({"post_id": ["p13", "p14", "p15"], "image": list(extra),
                        "label": ["lips", "lips", "nails"], "confidence": [0.9] * 3,
                        "likes": pd.array([9] * 3, dtype="Int64"),
                        "comments": pd.array([0] * 3, dtype="Int64")})
    ws.write("image_labels.parquet", pd.concat([il, new], ignore_index=True), IMAGE_LABELS)
    run_purge(*image_stage(fx.root, ws.root))  # the real stage writes each file's format
    cfg = sampled(fx, split=(1.0,))
    out = tmp_path / "dataset"
    with caplog.at_level(logging.WARNING, logger="weaklabel.dataset.export"):
        res = export(fx, out, cfg, image_root=fx.root)
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert {"train/lips/20190310_abc123.jpg", "train/lips/20190310_x.png.jpg",
            "train/nails/20190310_anim.gif", "train/lips/20190301_p01_a.jpg"} <= files
    assert (out / "train/lips/20190310_abc123.jpg").read_bytes() == extra["20190310/abc123"]
    with open(out / "dataset.csv", encoding="utf-8", newline="") as f:
        paths = {r["source"]: r["path"] for r in csv.DictReader(f)}
    assert paths["20190310/abc123"] == "train/lips/20190310_abc123.jpg"
    assert paths["20190310/x.png"] == "train/lips/20190310_x.png.jpg"
    refs = [json.loads(x)["source-ref"]
            for x in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "train/lips/20190310_x.png.jpg" in refs
    # the GIF is exported as it is, and said: once, with the count and the fix
    assert res.summary.imagefolder_skips == {"GIF": 1}
    assert json.loads((out / LEDGER).read_text(encoding="utf-8"))["imagefolder_skips"] == \
        {"GIF": 1}
    warned = [r.getMessage() for r in caplog.records if "ImageFolder" in r.getMessage()]
    assert warned == ["1 exported image(s) in a format torchvision's ImageFolder skips by "
                      "default (GIF 1): pass is_valid_file or an extensions list to "
                      "ImageFolder, or convert them"]
    assert "1 in a format ImageFolder skips" in res.summary.text()
    # and through the command a user runs: the warning is one line on stderr, not stdout
    from typer.testing import CliRunner

    from weaklabel.cli import app

    r = CliRunner().invoke(app, ["export", str(tmp_path / "cli"), "-c", str(fx.config),
                                 "--split", "1", "-q"])
    assert r.exit_code == 0, r.output
    lines = [x for x in r.stderr.splitlines() if "ImageFolder" in x]
    assert lines == warned and "is_valid_file" not in r.stdout  # stdout: the summary only
    assert (tmp_path / "cli/train/lips/20190310_x.png.jpg").is_file()


def test_only_a_dead_local_runs_aside_folder_is_removed(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import socket
    import subprocess
    import sys

    cfg = sampled(fx)
    out = tmp_path / "out"
    dead = []
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", ""])
        child.wait()  # reaped: its pid runs nothing now
        dead.append(child.pid)
    asides = [tmp_path / f".out.weaklabel-old-{pid}" for pid in dead]
    hosts = (socket.gethostname(), "not-this-host", None)  # None: no marker (a user's)
    for d, pid, host in zip(asides, dead, hosts, strict=True):
        d.mkdir()
        (d / "classes.json").write_text("[]")
        if host:
            (d / ex.OWNER).write_text(json.dumps({"host": host, "pid": pid}))
    live = tmp_path / f".out.weaklabel-old-{os.getppid()}"
    live.mkdir()
    (live / ex.OWNER).write_text(json.dumps({"host": socket.gethostname(),
                                             "pid": os.getppid()}))
    export(fx, out, cfg, image_root=fx.root)
    assert sorted(tmp_path.glob(".out.weaklabel-old-*")) == sorted([*asides[1:], live])


def test_no_image_in_a_format_imagefolder_takes_is_named_for_it_to_skip() -> None:
    from PIL import Image

    from weaklabel.dataset.export import IMAGEFOLDER_EXTENSIONS, count_imagefolder_skips

    # every format ImageFolder takes, under each of Pillow's names for it and none
    taken = sorted({f for e, f in Image.registered_extensions().items()
                    if e in IMAGEFOLDER_EXTENSIONS} | {"MPO"})
    fmts = {f"20190301/{f}{e}": f for f in taken
            for e in ("", ".bin", *ex.format_extensions(f))}
    names = file_names(list(fmts), fmts)
    assert count_imagefolder_skips(list(names), list(names.values()), fmts) == {}
