"""dedup: multi-index search, grouping, keep policy, label artifacts."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from conftest import jpeg_bytes, photo, write
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel.config import Config, ImagesConfig, with_overrides
from weaklabel.images.dedup import (
    NearSearch,
    brute_force_pairs,
    choose_keepers,
    find_exact_duplicates,
    find_groups,
    find_near_pairs,
    keep_rank,
    merge_groups,
    run_dedup,
)
from weaklabel.images.purge import image_stage


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


hash_lists = st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=60)


@settings(max_examples=60, deadline=None)
@given(base=hash_lists, flips=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 2**64 - 1)),
                                       max_size=40),
       threshold=st.integers(0, 10), bands=st.one_of(st.none(), st.integers(0, 4)))
def test_multi_index_search_equals_brute_force(base, flips, threshold, bands) -> None:
    hashes = list(base)
    for k, mask in flips:  # plant near neighbours: few-bit flips of existing hashes
        if hashes:
            src = hashes[k % len(hashes)]
            bits = [int(b) for b in np.flatnonzero(np.unpackbits(np.frombuffer(
                mask.to_bytes(8, "big"), np.uint8)))[: (mask % 9)]]
            hashes.append(src ^ sum(1 << b for b in bits))
    arr = np.array(hashes, dtype=np.uint64)
    m = None if bands is None else threshold + 1 + bands
    i, j, d = find_near_pairs(arr, threshold, bands=m)
    found = set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
    assert found == brute_force_pairs(arr, threshold)


PATHS = [f"{d}/{n}.jpg" for d in ("20190301", "20190302", "x") for n in "abcdef"]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=len(PATHS), max_size=len(PATHS)),
       st.dictionaries(st.sampled_from(PATHS), st.floats(0, 100), max_size=6))
def test_every_group_keeps_exactly_one_member(assign, eng) -> None:
    groups: dict[int, list[str]] = {}
    for p, g in zip(PATHS, assign, strict=False):
        groups.setdefault(g, []).append(p)
    rank = keep_rank(eng)
    out = choose_keepers(list(groups.values()), rank)
    assert len(out) == sum(1 for g in groups.values() if len(g) > 1)
    for kept, dups in out:
        members = {kept, *(d for d, _ in dups)}
        assert members in [set(g) for g in groups.values()]  # nobody lost, nobody added
        assert kept not in {d for d, _ in dups} and len(dups) == len(members) - 1
        assert kept == min(members, key=rank)


def test_chaining_is_split_into_stars() -> None:
    h = {"a": 0b0, "b": 0b111, "c": 0b111111}  # a~b (3), b~c (3), a far from c (6)
    out = choose_keepers([["a", "b", "c"]], keep_rank(),
                         distance=lambda x, y: bin(h[x] ^ h[y]).count("1"), threshold=4)
    assert out == [("a", [("b", 3)])]  # c is not pulled in through b


def test_exact_funnel_zero_bytes_and_hard_links() -> None:
    df = pd.DataFrame({"path": ["a", "b", "c", "e1", "e2"], "size": [5, 5, 5, 0, 0],
                       "sha1": ["x", "x", "y", None, None]})
    assert find_exact_duplicates(df) == [["a", "b"]]


def test_keep_policy_order() -> None:
    rank = keep_rank({"20190305/z.jpg": 10.0, "20190301/long_name.jpg": 1.0})
    paths = ["x/a.jpg", "20190302/a.jpg", "20190301/long_name.jpg", "20190305/z.jpg",
             "20190302/ab.jpg"]
    assert sorted(paths, key=rank) == ["20190305/z.jpg", "20190301/long_name.jpg",
                                       "20190302/a.jpg", "20190302/ab.jpg", "x/a.jpg"]


def test_a_16_bit_grey_photo_is_hashed_as_seen_not_clipped_white(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "img"
    root.mkdir()
    rng = np.random.default_rng(5)
    for k in range(2):  # two different 16-bit scans (Pillow's L conversion clips them)
        a = (rng.random((12, 16)) * 65535).astype("uint16")
        Image.fromarray(a).resize((160, 120), Image.Resampling.BILINEAR).save(
            root / f"scan{k}.png")
    with Image.open(root / "scan0.png") as im:
        eight = (np.asarray(im).astype(float) / 257).astype("uint8")
    Image.fromarray(eight).save(root / "scan0_8bit.jpg", quality=92)
    res = run_dedup(*image_stage(root, tmp_path / "ws"))
    rows = read_csv(res.outputs[0])
    assert [(r["kept"], r["duplicate"], r["kind"]) for r in rows] == [
        ("scan0.png", "scan0_8bit.jpg", "near")]
    assert read_csv(tmp_path / "ws" / "dedup_excluded.csv") == []  # none looks uniform


def test_a_10_bit_scan_stored_in_16_bits_is_hashed_with_its_8_bit_copy(tmp_path: Path) -> None:
    """Scaled by the depth its values need: divided by 257 its values were 0-3, and it
    was excluded as a uniform image."""
    from PIL import Image

    root = tmp_path / "img"
    root.mkdir()
    rng = np.random.default_rng(6)
    a = (rng.random((12, 16)) * 1023).astype("uint16")
    Image.fromarray(a).resize((160, 120), Image.Resampling.BILINEAR).save(root / "scan.png")
    with Image.open(root / "scan.png") as im:
        eight = (np.asarray(im).astype(float) * 255 / 1023).astype("uint8")
    Image.fromarray(eight).save(root / "scan_8bit.jpg", quality=92)
    res = run_dedup(*image_stage(root, tmp_path / "ws"))
    assert [(r["kept"], r["duplicate"]) for r in read_csv(res.outputs[0])] == [
        ("scan.png", "scan_8bit.jpg")]
    assert read_csv(tmp_path / "ws" / "dedup_excluded.csv") == []


def test_dedup_tree(tree: Path, tmp_path: Path) -> None:
    res = run_dedup(*image_stage(tree, tmp_path / "ws"))
    rows = read_csv(res.outputs[0])
    by_dup = {r["duplicate"]: r for r in rows}
    assert by_dup["20190304/a_copy.jpg"]["kind"] == "exact"
    assert by_dup["20190304/a_copy.jpg"]["kept"] == "20190303/a.jpg"  # oldest date folder
    assert by_dup["20190305/a_reenc.jpg"]["kind"] == "near"
    assert "misc/c_hardlink.jpg" not in by_dup and "20190303/c.jpg" not in by_dup
    # uniform images and empty files never group
    for p in ("misc/white.jpg", "misc/white2.png", "misc/one.png", "bad/empty.jpg"):
        assert p not in by_dup
    excluded = {r["path"]: r["reason"] for r in read_csv(tmp_path / "ws" / "dedup_excluded.csv")}
    assert excluded["misc/white.jpg"].startswith("uniform image")
    assert excluded["bad/trunc.jpg"].startswith("truncated")
    assert [(r["group"], r["duplicate"]) for r in rows] == sorted(
        (r["group"], r["duplicate"]) for r in rows)
    # same inputs → byte-identical output
    first = res.outputs[0].read_bytes()
    run_dedup(*image_stage(tree, tmp_path / "ws"))
    assert res.outputs[0].read_bytes() == first


def test_a_notebook_reproduces_duplicates_csv_from_the_inventory(tree: Path,
                                                                 tmp_path: Path) -> None:
    from weaklabel.images.inventory import open_inventory
    from weaklabel.images.walk import display_path

    res = run_dedup(*image_stage(tree, tmp_path / "ws"))
    with open_inventory(tmp_path / "ws", root=tree, max_pixels=89_478_485) as inv:
        files = inv.frame("phash-8")
    files = files[files["kind"] == "file"].reset_index(drop=True)
    rows, excluded = find_groups(files, keep_rank(), near=NearSearch("phash", 64, 6))
    assert [[str(g), k, display_path(a), display_path(b), str(d), why]
            for g, k, a, b, d, why in rows] == [list(r.values()) for r in read_csv(res.outputs[0])]
    assert {r["path"] for r in read_csv(tmp_path / "ws" / "dedup_excluded.csv")} == {
        display_path(p) for p in excluded}
    exact_rows, _ = find_groups(files, keep_rank(), near=None)
    assert exact_rows and {r[1] for r in exact_rows} == {"exact"}


def test_unique_sizes_are_never_hashed(tmp_path: Path) -> None:
    root = tmp_path / "img"
    for k in range(5):
        write(root / f"{k}.jpg", jpeg_bytes(photo(k)))
    write(root / "dup.jpg", (root / "0.jpg").read_bytes())
    res = run_dedup(*image_stage(root, tmp_path / "ws"))
    assert res.summary.scan["partial"] == 2  # only the colliding pair


def test_dedup_knows_no_labels_and_takes_non_utf8_names(tree: Path, tmp_path: Path) -> None:
    """Image labels in the workspace change nothing, and a duplicate group holding a file
    whose name is not UTF-8 is written (it used to raise UnicodeEncodeError while
    writing a label table)."""
    twin = os.fsencode(tree / "odd") + b"/caf\xe9_twin.jpg"
    with open(os.fsencode(tree / "odd") + b"/caf\xe9.jpg", "rb") as f, open(twin, "wb") as g:
        g.write(f.read())
    ws = tmp_path / "ws"
    ws.mkdir()
    before = run_dedup(*image_stage(tree, ws)).outputs[0].read_bytes()
    labels = pd.DataFrame({
        "image": ["20190303/a.jpg", "20190304/a_copy.jpg", "odd/caf\\xe9.jpg"],
        "post_id": ["p1", "p2", "p3"], "label": ["lips", "nails", "hair"],
        "confidence": [0.9, 0.6, 0.7],
        "likes": pd.array([1, 500, 3], dtype="Int64"),
        "comments": pd.array([0, 0, 0], dtype="Int64"),
    })
    labels.to_parquet(ws / "image_labels.parquet", index=False)
    res = run_dedup(*image_stage(tree, ws))
    assert res.outputs[0].read_bytes() == before
    rows = {r["duplicate"]: r for r in read_csv(res.outputs[0])}
    assert rows["odd/caf\\xe9_twin.jpg"]["kept"] == "odd/caf\\xe9.jpg"
    assert rows["odd/caf\\xe9_twin.jpg"]["kind"] == "exact"
    assert not (ws / "image_labels_dedup.parquet").exists()
    assert not (ws / "label_conflicts.csv").exists()


def test_merge_groups_names_each_pair() -> None:
    exact = [("b", [("b2", 0), ("b3", 0)]), ("z", [("z2", 0)])]
    near = [("k", [("b", 4), ("m", 2)])]
    rows = merge_groups(exact, near, {"m": ["m_link"]}, method="phash")
    assert [(g, kind, kept, dup, dist) for g, kind, kept, dup, dist, _ in rows] == [
        (1, "near", "k", "b", 4),
        (1, "exact", "k", "b2", 0),       # byte-identical to b, itself a near copy of k
        (1, "exact", "k", "b3", 0),
        (1, "near", "k", "m", 2),
        (1, "exact", "k", "m_link", 0),   # a hard link of m
        (2, "exact", "z", "z2", 0),
    ]
    assert rows[1][5] == "same bytes as b (a near copy of the kept file)"
    assert merge_groups([], [], {}) == []


def test_posts_table_drives_the_keep_policy(tree: Path, tmp_path: Path) -> None:
    posts = tmp_path / "posts.csv"
    posts.write_text("post_id,caption,images,likes,comments\n"
                     "p1,립스틱,20190303/a.jpg,1,0\n"
                     "p2,네일,20190305/a_reenc.jpg,100,5\n", encoding="utf-8")
    res = run_dedup(*image_stage(tree, tmp_path / "ws"), posts=posts)
    rows = read_csv(res.outputs[0])
    assert {r["kept"] for r in rows} == {"20190305/a_reenc.jpg"}
    by_dup = {r["duplicate"]: r for r in rows}
    # a and a_copy are byte-identical: one is a near copy of the kept file, the other
    # stays "exact" inside the near group
    assert by_dup["20190303/a.jpg"]["kind"] == "near"
    assert by_dup["20190304/a_copy.jpg"]["kind"] == "exact"
    assert by_dup["20190304/a_copy.jpg"]["distance"] == "0"
    assert "20190303/a.jpg" in by_dup["20190304/a_copy.jpg"]["reason"]


def test_threshold_zero_finds_only_exact(tree: Path, tmp_path: Path) -> None:
    cfg = with_overrides(Config(), {"images.near_threshold": 0})
    rows = read_csv(run_dedup(*image_stage(tree, tmp_path / "ws", cfg)).outputs[0])
    assert {r["kind"] for r in rows} == {"exact"}


def test_other_hash_methods_run(tree: Path, tmp_path: Path) -> None:
    for m in ("dhash", "ahash", "whash"):
        cfg = Config(images=ImagesConfig(hash_method=m, workers=1))
        rows = read_csv(run_dedup(*image_stage(tree, tmp_path / "ws", cfg)).outputs[0])
        assert any(r["duplicate"] == "20190304/a_copy.jpg" for r in rows), m
    assert os.path.exists(tmp_path / "ws" / "inventory.sqlite")


def test_workspace_posts_keep_the_copy_a_post_uses(tree: Path, tmp_path: Path) -> None:
    """Without --posts or image labels, tokenize's own posts decide: the copy a post
    references is kept over an unreferenced one, even from a later date folder."""
    from weaklabel.contracts import POST_IMAGES, POSTS
    from weaklabel.workspace import Workspace

    ws = Workspace(tmp_path / "ws").ensure()
    ws.write("posts.parquet", pd.DataFrame({
        "post_id": ["p1"], "caption": ["립스틱"], "likes": pd.array([3], dtype="Int64"),
        "comments": pd.array([0], dtype="Int64"), "created_at": [None]}), POSTS)
    ws.write("post_images.parquet", pd.DataFrame(
        {"post_id": ["p1"], "image": ["20190304/a_copy.jpg"]}), POST_IMAGES)
    res = run_dedup(*image_stage(tree, ws.root))
    by_dup = {r["duplicate"]: r for r in read_csv(res.outputs[0])}
    assert by_dup["20190303/a.jpg"]["kept"] == "20190304/a_copy.jpg"
    assert "20190304/a_copy.jpg" not in by_dup


def test_exact_only_decodes_nothing(tree: Path, tmp_path: Path) -> None:
    res = run_dedup(*image_stage(tree, tmp_path / "ws"), exact_only=True)
    rows = read_csv(res.outputs[0])
    assert {r["kind"] for r in rows} == {"exact"}
    assert {r["duplicate"] for r in rows} >= {"20190304/a_copy.jpg"}
    assert res.summary.scan["read"] == 0  # not one file opened for decoding
    again = run_dedup(*image_stage(tree, tmp_path / "ws2"))
    full = {r["duplicate"] for r in read_csv(again.outputs[0]) if r["kind"] == "exact"}
    assert {r["duplicate"] for r in rows} == full


def test_reencodes_thumbnails_and_exif_rotation_are_copies(tmp_path: Path) -> None:
    """One 900 px photo as WebP, PNG, a 150 px thumbnail and a copy stored rotated with
    an EXIF orientation tag: all one group. The same rotated pixels without the tag, an
    unrelated photo and uniform images stay apart."""
    import io

    from PIL import Image

    root = tmp_path / "img"
    big = photo(21, (900, 700))
    write(root / "20190301" / "orig.jpg", jpeg_bytes(big, quality=92))

    def encoded(im: Image.Image, fmt: str, **kw: object) -> bytes:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        return buf.getvalue()

    write(root / "20190302" / "copy.webp", encoded(big, "WEBP", quality=80))
    write(root / "20190302" / "copy.png", encoded(big, "PNG"))
    write(root / "20190302" / "thumb.jpg", jpeg_bytes(big.resize((150, 117)), quality=75))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show": the stored pixels lie on their side
    turned = big.transpose(Image.Transpose.ROTATE_90)
    write(root / "20190302" / "rotated.jpg", jpeg_bytes(turned, quality=90, exif=exif))
    write(root / "20190303" / "sideways.jpg", jpeg_bytes(turned, quality=90))
    write(root / "20190303" / "other.jpg", jpeg_bytes(photo(22, (900, 700)), quality=92))
    write(root / "20190303" / "black.jpg", jpeg_bytes(Image.new("RGB", (900, 700), "black")))
    write(root / "20190303" / "white.png", encoded(Image.new("RGB", (640, 480), "white"), "PNG"))
    write(root / "20190303" / "white.jpg", jpeg_bytes(Image.new("RGB", (64, 64), "white")))
    one = Config(images=ImagesConfig(workers=1))
    rows = read_csv(run_dedup(*image_stage(root, tmp_path / "ws", one)).outputs[0])
    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(r["group"], {r["kept"]}).add(r["duplicate"])
    assert list(groups.values()) == [{"20190301/orig.jpg", "20190302/copy.webp",
                                      "20190302/copy.png", "20190302/thumb.jpg",
                                      "20190302/rotated.jpg"}]
    assert {r["kind"] for r in rows} == {"near"}


def test_small_and_large_jpeg_hashes_agree_with_a_full_decode(tmp_path: Path) -> None:
    """The reduced decode never goes below what pHash needs: at every size the hash is
    within 4 bits of imagehash.phash on the fully decoded image (a 1/8-scale draft of a
    100 px JPEG used to be 12 bits off)."""
    import imagehash
    from PIL import Image

    from weaklabel.images.checks import Task, examine
    from weaklabel.images.hashes import draft_side

    assert draft_side(("phash", 8)) == 64 and draft_side(("dhash", 8)) == 18
    assert draft_side(("whash", 8)) == 0 and draft_side(None) is None
    for seed in range(6):
        for side in (100, 160, 240, 480, 900):
            p = write(tmp_path / f"{seed}_{side}.jpg",
                      jpeg_bytes(photo(seed, (side, side * 3 // 4)), quality=90))
            res = examine(Task(str(p), p.name, p.stat().st_size, True, ("phash", 8), 10**9))
            with Image.open(p) as im:
                full = imagehash.phash(im.convert("L"))
            assert (imagehash.hex_to_hash(res["hash"]) - full) <= 4, (seed, side)


def test_exact_rerun_notices_a_new_twin_and_a_removed_one(tmp_path: Path) -> None:
    """The funnel is skipped when nothing changed, and runs again when a file comes or
    goes: a cached answer must never hide a new copy."""
    root = tmp_path / "img"
    for k in range(4):
        write(root / f"{k}.jpg", jpeg_bytes(photo(k)))
    ws = tmp_path / "ws"
    assert read_csv(run_dedup(*image_stage(root, ws), exact_only=True).outputs[0]) == []
    again = run_dedup(*image_stage(root, ws), exact_only=True)
    assert again.summary.scan["read"] == 0 and again.summary.scan["partial"] == 0
    write(root / "sub" / "twin.jpg", (root / "2.jpg").read_bytes())
    rows = read_csv(run_dedup(*image_stage(root, ws), exact_only=True).outputs[0])
    assert [(r["kept"], r["duplicate"], r["kind"]) for r in rows] == [
        ("2.jpg", "sub/twin.jpg", "exact")]
    (root / "sub" / "twin.jpg").unlink()
    assert read_csv(run_dedup(*image_stage(root, ws), exact_only=True).outputs[0]) == []


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=12, max_size=12),
       st.lists(st.integers(0, 3), min_size=12, max_size=12),
       st.lists(st.integers(0, 6), min_size=12, max_size=12))
def test_merge_groups_lists_every_file_once_and_never_the_kept(exact_of, near_of, dist) -> None:
    """Whatever the exact and near groups: each duplicate is listed once, no kept file is
    listed as a duplicate, and a row is 'near' only if its file is not byte-identical
    to another member."""
    paths = [f"f{k:02d}" for k in range(12)]
    exact_groups: dict[int, list[str]] = {}
    for p, g in zip(paths, exact_of, strict=True):
        if g:
            exact_groups.setdefault(g, []).append(p)
    exact = [(g[0], [(d, 0) for d in g[1:]]) for g in exact_groups.values() if len(g) > 1]
    exact_dups = {d for _, ds in exact for d, _ in ds}
    reps = [p for p in paths if p not in exact_dups]
    near_groups: dict[int, list[str]] = {}
    for p in reps:
        g = near_of[paths.index(p)]
        if g:
            near_groups.setdefault(g, []).append(p)
    near = [(g[0], [(d, dist[paths.index(d)]) for d in g[1:]])
            for g in near_groups.values() if len(g) > 1]
    rows = merge_groups(exact, near, {})
    dups = [r[3] for r in rows]
    kept = {r[2] for r in rows}
    assert len(dups) == len(set(dups))
    assert not kept & set(dups)
    assert set(dups) == exact_dups | {d for _, ds in near for d, _ in ds}
    for _, kind, _, d, distance, _ in rows:
        assert (kind == "exact") == (d in exact_dups)
        assert kind == "near" or distance == 0


def _drawing(post: int, side: int, topic: int | None = None) -> Any:
    """A picture from the example generator (light gradient, sensor noise, objects): the
    kind whose brightened copies move pHash by 8–10 bits."""
    import sys

    repo = str(Path(__file__).resolve().parents[2])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from examples.generate import draw_image

    return draw_image(7, post, 0, post % 13 if topic is None else topic, side)



def _write_crops(root: Path, posts: tuple[int, ...], box: tuple[int, int, int, int]) -> None:
    """For each post, a 600 px drawing and a copy cut to ``box`` (left, top, right,
    bottom, in per cent of its sides), both JPEG q 85."""
    for post in posts:
        a = _drawing(post, 600)
        w, h = a.size
        write(root / f"{post}" / "orig.jpg", jpeg_bytes(a, quality=85))
        left, top, right, bottom = box
        write(root / f"{post}" / "crop.jpg",
              jpeg_bytes(a.crop((w * left // 100, h * top // 100, w * right // 100,
                                 h * bottom // 100)), quality=85))


def _lookalike(a: Any, c: Any, radius: float) -> Any:
    """``a``'s broad light and layout with ``c``'s detail: an unrelated photo that pHash
    places near ``a``."""
    from PIL import Image, ImageFilter

    low = np.asarray(a.filter(ImageFilter.GaussianBlur(radius)), np.float32)
    cc = np.asarray(c.resize(a.size), np.float32)
    cl = np.asarray(c.resize(a.size).filter(ImageFilter.GaussianBlur(radius)), np.float32)
    return Image.fromarray(np.clip(low + cc - cl, 0, 255).astype(np.uint8))


def test_copies_beyond_the_threshold_verify_and_lookalikes_stay_apart(tmp_path: Path) -> None:
    """Two stages: a brightened copy whose highlights clip sits 10 pHash bits from its
    original (beyond the threshold of 6) and joins its group because the thumbnails'
    detail agrees; contrast, re-encoded and thumbnail copies join too. Look-alikes (one
    photo's light with another's detail) within the candidate radius stay apart."""
    from PIL import ImageEnhance

    from weaklabel.images.checks import Task, examine
    from weaklabel.images.dedup import candidate_radius

    root = tmp_path / "img"
    orig = _drawing(2, 600)
    write(root / "a" / "orig.jpg", jpeg_bytes(orig, quality=85))
    write(root / "b" / "bright.jpg",
          jpeg_bytes(ImageEnhance.Brightness(orig).enhance(1.15), quality=75))
    write(root / "b" / "contrast.jpg",
          jpeg_bytes(ImageEnhance.Contrast(orig).enhance(0.7), quality=85))
    write(root / "b" / "reenc.jpg", jpeg_bytes(orig, quality=40))
    write(root / "b" / "thumb.jpg", jpeg_bytes(orig.resize((150, orig.height * 150 // orig.width)),
                                               quality=75))
    pairs = []
    for s in (3, 4, 11, 12):
        a = _drawing(s, 900)
        write(root / "c" / f"photo{s}.jpg", jpeg_bytes(a, quality=85))
        write(root / "c" / f"lookalike{s}.jpg",
              jpeg_bytes(_lookalike(a, _drawing(100 + s, 900, s % 13), 45), quality=85))
        pairs.append((f"c/photo{s}.jpg", f"c/lookalike{s}.jpg"))

    def phash(rel: str) -> int:
        p = root / rel
        return int(examine(Task(str(p), rel, p.stat().st_size, True, ("phash", 8),
                                10**9))["hash"], 16)

    threshold = ImagesConfig().near_threshold
    radius = candidate_radius(threshold)
    # the cases are the ones the second stage decides: beyond the threshold, within reach
    assert threshold < (phash("a/orig.jpg") ^ phash("b/bright.jpg")).bit_count() <= radius
    for a, b in pairs:
        assert threshold < (phash(a) ^ phash(b)).bit_count() <= radius, (a, b)

    one = Config(images=ImagesConfig(workers=1))
    rows = read_csv(run_dedup(*image_stage(root, tmp_path / "ws", one)).outputs[0])
    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(r["group"], {r["kept"]}).add(r["duplicate"])
    assert {"a/orig.jpg", "b/bright.jpg", "b/contrast.jpg", "b/reenc.jpg",
            "b/thumb.jpg"} in groups.values()
    for a, b in pairs:
        assert not any(a in g and b in g for g in groups.values()), (a, b)
    bright = next(r for r in rows if r["duplicate"] == "b/bright.jpg")
    assert bright["kind"] == "near" and "thumbnails agree" in bright["reason"]


def test_flat_thumbnails_never_verify() -> None:
    """A nearly flat picture has only noise as detail: never verified by thumbnails."""
    from weaklabel.images.dedup import MIN_AGREEMENT, thumb_agreement, thumb_detail

    rng = np.random.default_rng(0)
    shapes = np.tile(np.linspace(0, 200, 32), (32, 1))
    shapes[4:12, 4:12] += 50
    other = shapes.copy()
    other[4:12, 4:12] -= 50
    other[20:28, 18:30] += 50
    thumbs = np.clip(np.stack([
        np.full(1024, 128.0) + rng.normal(0, 0.3, 1024),        # flat grey, noise only
        shapes.ravel(), (shapes * 0.8 + 20).ravel(),            # detail, contrast changed
        other.ravel(),                                          # same light, other objects
    ]), 0, 255).astype(np.uint8)
    d = thumb_detail(thumbs)
    agree = thumb_agreement(d, np.array([0, 1, 1]), np.array([0, 2, 3]))
    assert agree[0] == 0.0                                 # nothing to agree on
    assert agree[1] > 0.99                                 # detail survives contrast
    assert agree[2] < MIN_AGREEMENT


def test_aligned_agreement_equals_cropping_each_window() -> None:
    """The matrix-product shortcut gives what building every crop window, taking its
    detail and correlating it would give: the best window, either picture cropped."""
    from weaklabel.images.dedup import (
        DETAIL_BLOCKS,
        _window_matrices,
        aligned_agreement,
        thumb_agreement,
        thumb_detail,
    )

    rng = np.random.default_rng(3)
    base = rng.normal(128, 40, (6, 32, 32)).cumsum(axis=2) / 8 + 100  # some structure
    thumbs = np.clip(base, 0, 255).astype(np.uint8).reshape(6, -1)
    thumbs[5] = 128  # flat: correlates with nothing
    i, j = np.array([0, 1, 2, 0]), np.array([1, 3, 4, 5])
    m = _window_matrices(32)
    want = []
    for a, b in zip(i, j, strict=True):
        best = -1.0
        for src, dst in ((a, b), (b, a)):
            t = thumbs[src].astype(np.float64).reshape(32, 32)
            wins = [m[y] @ t @ m[x].T for y in range(len(m)) for x in range(len(m))
                    if (y, x) != (0, 0)]
            stack = np.vstack([np.array(wins).reshape(len(wins), -1),
                               thumbs[dst].astype(np.float64)[None]])
            details = [thumb_detail(stack, blocks) for blocks in DETAIL_BLOCKS]
            last = np.full(len(wins), len(wins))
            best = max(best, float(thumb_agreement(details, np.arange(len(wins)), last).max()))
        want.append(best)
    got = aligned_agreement(thumbs, i, j, chunk=3)
    assert np.allclose(got, want, atol=1e-6)
    assert got[3] == 0.0


def test_a_cropped_copy_beyond_the_threshold_verifies_once_aligned(tmp_path: Path) -> None:
    """A copy with 2–5 % cut from its edges sits 8 pHash bits from its original and its
    thumbnails do not agree as they are; cropped to match, they do, so it joins its
    original's group, the reason saying so."""
    from weaklabel.images.checks import Task, examine
    from weaklabel.images.dedup import MIN_AGREEMENT

    root = tmp_path / "img"
    _write_crops(root, (21, 30), (3, 2, 97, 95))

    def seen(rel: str) -> dict[str, Any]:
        p = root / rel
        return examine(Task(str(p), rel, p.stat().st_size, True, ("phash", 8), 10**9))

    threshold = ImagesConfig().near_threshold
    for post in (21, 30):
        a, c = seen(f"{post}/orig.jpg"), seen(f"{post}/crop.jpg")
        assert (int(a["hash"], 16) ^ int(c["hash"], 16)).bit_count() > threshold
        thumbs = np.array([np.frombuffer(a["thumb"], np.uint8),
                           np.frombuffer(c["thumb"], np.uint8)])
        from weaklabel.images.dedup import DETAIL_BLOCKS, thumb_agreement, thumb_detail

        plain = thumb_agreement([thumb_detail(thumbs, b) for b in DETAIL_BLOCKS],
                                np.array([0]), np.array([1]))
        assert plain[0] < MIN_AGREEMENT  # only the aligned check can join them
    one = Config(images=ImagesConfig(workers=1))
    rows = read_csv(run_dedup(*image_stage(root, tmp_path / "ws", one)).outputs[0])
    pairs = {(r["kept"], r["duplicate"]): r for r in rows}
    for post in (21, 30):
        r = pairs.get((f"{post}/orig.jpg", f"{post}/crop.jpg")) or pairs[
            (f"{post}/crop.jpg", f"{post}/orig.jpg")]
        assert r["kind"] == "near" and "aligned for a crop" in r["reason"]
    assert len(rows) == 2  # the two pictures stay apart


def _pair_scores(root: Path, a: str, b: str) -> tuple[int, float, float]:
    """What dedup sees of two files: pHash distance, plain and aligned thumbnail
    agreement."""
    from weaklabel.images.checks import Task, examine
    from weaklabel.images.dedup import (
        DETAIL_BLOCKS,
        aligned_agreement,
        thumb_agreement,
        thumb_detail,
    )

    seen = [examine(Task(str(root / r), r, (root / r).stat().st_size, True, ("phash", 8),
                         10**9)) for r in (a, b)]
    thumbs = np.array([np.frombuffer(x["thumb"], np.uint8) for x in seen])
    i, j = np.array([0]), np.array([1])
    plain = thumb_agreement([thumb_detail(thumbs, k) for k in DETAIL_BLOCKS], i, j)
    return ((int(seen[0]["hash"], 16) ^ int(seen[1]["hash"], 16)).bit_count(),
            float(plain[0]), float(aligned_agreement(thumbs, i, j)[0]))


def test_a_ten_percent_crop_joins_when_hash_and_aligned_detail_both_agree(
        tmp_path: Path) -> None:
    """A copy with 10 % cut from its sides sits 8–10 pHash bits from its original (beyond
    the threshold) and its aligned thumbnails agree at 0.90–0.94, under the bar a pair
    must pass on that one score (MIN_ALIGNED): within close_radius bits the two measures
    together decide, and it joins its original."""
    from weaklabel.images.dedup import (
        MIN_AGREEMENT,
        MIN_ALIGNED,
        MIN_ALIGNED_CLOSE,
        close_radius,
    )

    root = tmp_path / "img"
    posts = (15, 32)
    _write_crops(root, posts, (4, 6, 94, 96))
    threshold = ImagesConfig().near_threshold
    for post in posts:
        d, plain, aligned = _pair_scores(root, f"{post}/orig.jpg", f"{post}/crop.jpg")
        # only the two-measure rule can join them: not the hash alone, not the plain
        # thumbnails, not the aligned score on its own bar
        assert threshold < d <= close_radius(threshold), (post, d)
        assert plain < MIN_AGREEMENT and MIN_ALIGNED_CLOSE <= aligned < MIN_ALIGNED, (
            post, plain, aligned)
    one = Config(images=ImagesConfig(workers=1))
    rows = read_csv(run_dedup(*image_stage(root, tmp_path / "ws", one)).outputs[0])
    assert len(rows) == 2  # one pair per picture, the pictures apart
    for post in posts:
        r = next(r for r in rows if {r["kept"], r["duplicate"]}
                 == {f"{post}/orig.jpg", f"{post}/crop.jpg"})
        assert r["kind"] == "near" and "aligned for a crop" in r["reason"]


def test_a_crop_joins_through_a_member_only_if_it_agrees_with_the_kept_file(
        tmp_path: Path) -> None:
    """Stars, not components: c is within the threshold of b, b of the kept a, and c is
    9 bits from a. With c's thumbnail a 10 % crop of a's picture, c joins a's group on
    its own check against a (aligned within close_radius), whatever joins it to b; with
    c's thumbnail an unrelated picture, the chain through b does not carry it in."""
    from weaklabel.images.checks import Task, examine

    pic, other = _drawing(15, 600), _drawing(16, 600)
    w, h = pic.size
    files = {"orig": pic, "crop": pic.crop((w * 4 // 100, h * 6 // 100, w * 94 // 100,
                                             h * 96 // 100)), "other": other}
    thumb = {}
    for name, im in files.items():
        p = write(tmp_path / f"{name}.jpg", jpeg_bytes(im, quality=85))
        thumb[name] = examine(Task(str(p), p.name, p.stat().st_size, True, ("phash", 8),
                                   10**9))["thumb"]
    base = 0x0F0F_0F0F_3333_5555
    hashes = {"a.jpg": base, "b.jpg": base ^ 0x7, "c.jpg": base ^ 0x7 ^ (0x3F << 8)}

    def rows(c_thumb: bytes) -> list[dict[str, Any]]:
        thumbs = {"a.jpg": thumb["orig"], "b.jpg": thumb["orig"], "c.jpg": c_thumb}
        return [{"path": p, "size": 1000 + k, "dev": 1, "ino": k, "sha1": None,
                 "status": "ok", "hash": f"{hv:016x}", "degenerate": None,
                 "thumb": thumbs[p]} for k, (p, hv) in enumerate(hashes.items())]

    near = NearSearch("phash", 64, 6)
    crop, _ = find_groups(rows(thumb["crop"]), keep_rank(), near=near)
    assert {(r[2], r[3]) for r in crop} == {("a.jpg", "b.jpg"), ("a.jpg", "c.jpg")}
    c_row = next(r for r in crop if r[3] == "c.jpg")
    assert c_row[4] == 9 and "aligned for a crop" in c_row[5]
    apart, _ = find_groups(rows(thumb["other"]), keep_rank(), near=near)
    assert {(r[2], r[3]) for r in apart} == {("a.jpg", "b.jpg")}


def test_close_radius_is_ten_bits_of_64_within_the_candidate_search() -> None:
    """The band where two measures decide: up to 10 bits of 64 at the default threshold,
    never past the candidate search (2 × threshold), no band once the threshold reaches
    it, and scaled for a shorter hash."""
    from weaklabel.images.dedup import candidate_radius, close_radius

    assert close_radius(6) == 10
    assert close_radius(4) == candidate_radius(4) == 8
    assert close_radius(12) == 12  # the threshold itself: nothing between
    assert close_radius(3, bits=32) == 5 and close_radius(2, bits=32) == 4


def test_different_drawings_close_in_phash_stay_apart_when_aligned_detail_differs(
        tmp_path: Path) -> None:
    """Two pairs of different drawings of one topic (the bundled example's, 160 px) that
    pHash places 8 and 10 bits apart, within close_radius: their aligned thumbnails
    agree at 0.87–0.89, below MIN_ALIGNED_CLOSE, so the second measure keeps them
    apart though the first says "near"."""
    from weaklabel.images.dedup import MIN_AGREEMENT, MIN_ALIGNED_CLOSE, close_radius

    repo = str(Path(__file__).resolve().parents[2])
    import sys

    if repo not in sys.path:
        sys.path.insert(0, repo)
    from examples.generate import JPEG_QUALITY, draw_image

    root = tmp_path / "img"
    pairs = (((392, 1), (1429, 2)), ((359, 2), (1423, 1)))  # (post, image k), topic 8
    for n, pair in enumerate(pairs):
        for post, k in pair:
            write(root / f"{n}" / f"p{post}_{k}.jpg",
                  jpeg_bytes(draw_image(7, post, k, 8, 160), quality=JPEG_QUALITY))
    threshold = ImagesConfig().near_threshold
    names = [tuple(f"{n}/p{post}_{k}.jpg" for post, k in pair) for n, pair in enumerate(pairs)]
    for a, b in names:
        d, plain, aligned = _pair_scores(root, a, b)
        assert threshold < d <= close_radius(threshold), (a, b, d)
        assert plain < MIN_AGREEMENT and 0.85 < aligned < MIN_ALIGNED_CLOSE, (a, b, aligned)
    one = Config(images=ImagesConfig(workers=1))
    rows = read_csv(run_dedup(*image_stage(root, tmp_path / "ws", one)).outputs[0])
    assert rows == []


def test_a_chain_beyond_the_candidate_radius_is_verified_against_the_kept_file() -> None:
    """A~B~C~D, each 6 bits from the next, D 18 bits from A (beyond the candidate
    search's reach): with the same picture in every thumbnail D still joins A's group,
    verified against the kept file on the thumbnails; with D's thumbnail another
    picture, D is split off instead of riding the chain."""
    rng = np.random.default_rng(5)
    picture = np.clip(rng.normal(0, 30, (32, 32)).cumsum(axis=1) + 128, 0, 255)
    other = np.clip(rng.normal(0, 30, (32, 32)).cumsum(axis=0) + 128, 0, 255)
    base = 0x0F0F_0F0F_3333_5555
    hashes = {"a.jpg": base, "b.jpg": base ^ 0x3F, "c.jpg": base ^ 0x3F ^ (0x3F << 6),
              "d.jpg": base ^ 0x3F ^ (0x3F << 6) ^ (0x3F << 12)}

    def rows(d_thumb: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for k, (p, h) in enumerate(hashes.items()):
            thumb = d_thumb if p == "d.jpg" else picture
            out.append({"path": p, "size": 1000 + k, "dev": 1, "ino": k, "sha1": None,
                        "status": "ok", "hash": f"{h:016x}", "degenerate": None,
                        "thumb": thumb.astype(np.uint8).tobytes()})
        return out

    near = NearSearch("phash", 64, 6)
    same, _ = find_groups(rows(picture), keep_rank(), near=near)
    assert {(r[2], r[3]) for r in same} == {("a.jpg", "b.jpg"), ("a.jpg", "c.jpg"),
                                            ("a.jpg", "d.jpg")}
    d_row = next(r for r in same if r[3] == "d.jpg")
    assert d_row[4] == 18 and "thumbnails agree" in d_row[5]
    apart, _ = find_groups(rows(other), keep_rank(), near=near)
    assert "d.jpg" not in {r[3] for r in apart if r[2] == "a.jpg"}
