"""Fixtures for the data-set stages: a small workspace of real artifacts, made by code.

The story of the fixture (engagement = likes + 2 * comments):

======  =======  ============================  ===========================================
post    label    image(s)                      what it tests
======  =======  ============================  ===========================================
p01     lips     20190301/p01_a.jpg, p01_b     two images of one post (per_post), score 110
p02     lips     20190302/p02.jpg              score 50, confidence 0.8
p03     lips     20190302/p03.jpg              score 50, confidence 0.9 (wins the tie)
p04     lips     20190303/p04.jpg              no likes/comments (score 0); file missing
p05     lips     20190303/p05.jpg              most engaging lips post, but truncated
p06     nails    20190304/p06.jpg              kept copy of a duplicate group
p07     nails    20190305/p07.jpg              byte-identical twin of p06 (exact)
p08     nails    20190305/p08.jpg              resized copy of p06 (near)
p09     nails    20190306/p09.jpg              confidence 0.3
p10     other    20190306/p10.jpg              the background label
p11     (none)   20190307/p11.jpg              abstained, very engaging
p12     nails    20190301/p01_a.jpg            shares p01's image (p01's label wins)
=cmd    lips     misc/evil.jpg                 a formula-like post id; HTML in caption
======  =======  ============================  ===========================================
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from weaklabel.contracts import IMAGE_LABELS, POST_LABELS, POSTS
from weaklabel.workspace import Workspace

#        post_id  label   conf  source  likes comments created_at
POSTS_ROWS = [
    ("p01", "lips", 0.95, "seed", 100, 5, "2019-03-01 10:00:00"),
    ("p02", "lips", 0.80, "knn", 50, 0, "2019-03-02 10:00:00"),
    ("p03", "lips", 0.90, "knn", 50, 0, "2019-03-02 11:00:00"),
    ("p04", "lips", 0.70, "knn", None, None, "2019-03-03 10:00:00"),
    ("p05", "lips", 0.99, "seed", 150, 5, "2019-03-03 11:00:00"),
    ("p06", "nails", 0.90, "seed", 30, 2, "2019-03-04 10:00:00"),
    ("p07", "nails", 0.85, "knn", 20, 1, "2019-03-05 10:00:00"),
    ("p08", "nails", 0.60, "knn", 10, 0, "2019-03-05 11:00:00"),
    ("p09", "nails", 0.30, "knn", 5, 0, "2019-03-06 10:00:00"),
    ("p10", "other", 0.75, "knn", 7, 7, "2019-03-06 11:00:00"),
    ("p11", "", 0.0, "none", 1000, 0, "2019-03-07 10:00:00"),
    ("p12", "nails", 0.60, "knn", 1, 0, "2019-03-07 11:00:00"),
    ("=cmd", "lips", 0.65, "knn", 3, 0, "2019-03-08 23:59:59"),
]
IMAGES = [
    ("p01", "20190301/p01_a.jpg"), ("p01", "20190301/p01_b.jpg"),
    ("p02", "20190302/p02.jpg"), ("p03", "20190302/p03.jpg"), ("p04", "20190303/p04.jpg"),
    ("p05", "20190303/p05.jpg"), ("p06", "20190304/p06.jpg"), ("p07", "20190305/p07.jpg"),
    ("p08", "20190305/p08.jpg"), ("p09", "20190306/p09.jpg"), ("p10", "20190306/p10.jpg"),
    ("p11", "20190307/p11.jpg"), ("p12", "20190301/p01_a.jpg"), ("=cmd", "misc/evil.jpg"),
]
CAPTIONS = {"=cmd": '<script>alert("x")</script> 립스틱 & <b>bold</b>',
            "p01": "오늘의 립스틱 💄 #데일리룩"}


def photo(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """A smooth textured picture, different per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = (rng.random((4, 5, 3)) * 255).astype("uint8")
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)


def jpeg(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@dataclass
class Fixture:
    ws: Path
    root: Path
    labelmap: Path
    config: Path


def write_images(root: Path) -> None:
    for i, (pid, rel) in enumerate(IMAGES):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if pid in ("p04", "p12"):
            continue  # p04: missing file; p12: shares p01's file
        if pid == "p07":
            p.write_bytes((root / "20190304/p06.jpg").read_bytes())
        elif pid == "p08":
            p.write_bytes(jpeg(photo(6).resize((64, 48)), quality=70))
        elif pid == "p05":
            data = jpeg(photo(5))
            p.write_bytes(data[: len(data) // 2])
        else:
            p.write_bytes(jpeg(photo(int(pid[1:]) if pid[1:].isdigit() else 99 + i)))


def write_workspace(base: Path, labelmap: str, *, purge: bool = True,
                    dedup: bool = True) -> Fixture:
    ws = Workspace(base / "ws").ensure()
    root = base / "images"
    write_images(root)
    posts = pd.DataFrame({
        "post_id": [r[0] for r in POSTS_ROWS],
        "caption": [CAPTIONS.get(r[0], f"caption of {r[0]}") for r in POSTS_ROWS],
        "likes": pd.array([r[4] for r in POSTS_ROWS], dtype="Int64"),
        "comments": pd.array([r[5] for r in POSTS_ROWS], dtype="Int64"),
        "created_at": [r[6] for r in POSTS_ROWS],
    })
    ws.write("posts.parquet", posts, POSTS)
    pl = pd.DataFrame({
        "post_id": [r[0] for r in POSTS_ROWS], "label": [r[1] for r in POSTS_ROWS],
        "confidence": [r[2] for r in POSTS_ROWS], "source": [r[3] for r in POSTS_ROWS],
        "evidence": ["" for _ in POSTS_ROWS], "top_label": [r[1] for r in POSTS_ROWS],
    })
    ws.write("post_labels.parquet", pl, POST_LABELS)
    links = pd.DataFrame(IMAGES, columns=["post_id", "image"])
    il = links.merge(pl[["post_id", "label", "confidence"]], on="post_id").merge(
        posts[["post_id", "likes", "comments"]], on="post_id")
    ws.write("image_labels.parquet", il, IMAGE_LABELS)
    (ws.root / "clusters.csv").write_text(
        "cluster,size,count,top_words,central_words\n"
        "0,3,40,립스틱 틴트 <b>,립스틱\n1,2,20,네일 젤,네일\n2,2,9,일상 카페,카페\n"
        "3,1,2,기타,기타\n", encoding="utf-8")
    if purge:  # the real stage: it also writes the inventory export verifies against
        from weaklabel.images.purge import image_stage, run_purge

        run_purge(*image_stage(root, ws.root))
    if dedup:
        (ws.root / "duplicates.csv").write_text(textwrap.dedent("""\
            group,kind,kept,duplicate,distance,reason
            1,exact,20190304/p06.jpg,20190305/p07.jpg,0,same SHA-1 0123456789ab
            1,near,20190304/p06.jpg,20190305/p08.jpg,2,phash distance 2 <= 6
            """), encoding="utf-8")
    lm = base / "labelmap.yaml"
    lm.write_text(labelmap, encoding="utf-8")
    cfg = base / "config.yaml"
    cfg.write_text(f"workspace: {ws.root}\nlabelmap: {lm}\nimages:\n  root: {root}\n",
                   encoding="utf-8")
    return Fixture(ws=ws.root, root=root, labelmap=lm, config=cfg)


@pytest.fixture
def fx(tmp_path: Path, stage_labelmap: str) -> Fixture:
    """The full workspace: labels, a real purge (purge.csv and the inventory),
    duplicates.csv, clusters, label map."""
    return write_workspace(tmp_path, stage_labelmap)


@pytest.fixture
def fx_bare(tmp_path: Path, stage_labelmap: str) -> Fixture:
    """Labels only: purge and dedup not run."""
    return write_workspace(tmp_path, stage_labelmap, purge=False, dedup=False)
