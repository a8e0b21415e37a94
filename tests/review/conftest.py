"""Fixtures for review: a small workspace of real artifacts and real JPEG files.

=====  =======  ==================  ===============================================
post   label    image(s)            what it tests
=====  =======  ==================  ===============================================
p00…   lips /   d/pNN.jpg           60 image posts: a grid page of 48 and a second one;
p59    nails                        confidence falls with the post number
k1     lips     d/k1.jpg            keywords say nails: sources disagree
t1     nails    (none)              a text-only post: queued with its caption
t2     (none)   (none)              abstained, best guess nails
=====  =======  ==================  ===============================================
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from weaklabel.contracts import IMAGE_LABELS, POST_IMAGES, POST_LABELS, POSTS
from weaklabel.workspace import Workspace


def jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = (rng.random((4, 5, 3)) * 255).astype("uint8")
    im = Image.fromarray(small).resize((96, 72), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@dataclass
class ReviewFx:
    ws: Path
    root: Path
    labelmap: Path
    config: Path


def write_review_workspace(base: Path, labelmap: str) -> ReviewFx:
    ws = Workspace(base / "ws").ensure()
    root = base / "images"
    (root / "d").mkdir(parents=True)
    rows = []
    links = []
    for i in range(60):
        pid = f"p{i:02d}"
        lab = "lips" if i % 2 == 0 else "nails"
        rows.append((pid, lab, round(0.99 - i * 0.01, 2), "knn",
                     f"knn {lab}:{0.99 - i * 0.01:.2f}", lab, f"캡션 {pid} 립스틱"))
        links.append((pid, f"d/{pid}.jpg"))
        (root / "d" / f"{pid}.jpg").write_bytes(jpeg(i))
    rows.append(("k1", "lips", 0.9, "seed", "lips: 립스틱", "lips", "립스틱 네일"))
    links.append(("k1", "d/k1.jpg"))
    (root / "d" / "k1.jpg").write_bytes(jpeg(100))
    rows.append(("t1", "nails", 0.7, "knn", "knn nails:0.70 lips:0.30", "nails", "네일 글만"))
    rows.append(("t2", "", 0.4, "none", "knn nails:0.40 lips:0.35", "nails", "애매한 글"))
    posts = pd.DataFrame({
        "post_id": [r[0] for r in rows], "caption": [r[6] for r in rows],
        "likes": pd.array([10 * (i + 1) for i in range(len(rows))], dtype="Int64"),
        "comments": pd.array([1] * len(rows), dtype="Int64"),
        "created_at": ["2019-03-01 10:00:00"] * len(rows)})
    ws.write("posts.parquet", posts, POSTS)
    pl = pd.DataFrame({"post_id": [r[0] for r in rows], "label": [r[1] for r in rows],
                       "confidence": [r[2] for r in rows], "source": [r[3] for r in rows],
                       "evidence": [r[4] for r in rows], "top_label": [r[5] for r in rows]})
    ws.write("post_labels.parquet", pl, POST_LABELS)
    kw = pl.assign(label=["nails" if p == "k1" else (lab if s == "seed" else "")
                          for p, lab, s in zip(pl["post_id"], pl["label"], pl["source"],
                                               strict=True)])
    ws.write("keyword_labels.parquet", kw, POST_LABELS)
    li = pd.DataFrame(links, columns=["post_id", "image"])
    ws.write("post_images.parquet", li, POST_IMAGES)
    il = li.merge(pl[["post_id", "label", "confidence"]], on="post_id").merge(
        posts[["post_id", "likes", "comments"]], on="post_id")
    ws.write("image_labels.parquet", il, IMAGE_LABELS)
    lm = base / "labelmap.yaml"
    lm.write_text(labelmap, encoding="utf-8")
    cfg = base / "config.yaml"
    cfg.write_text(f"workspace: {ws.root}\nlabelmap: {lm}\nimages:\n  root: {root}\n",
                   encoding="utf-8")
    return ReviewFx(ws.root, root, lm, cfg)


@pytest.fixture
def rfx(tmp_path: Path, stage_labelmap: str) -> ReviewFx:
    return write_review_workspace(tmp_path, stage_labelmap)


@dataclass
class Served:
    proc: subprocess.Popen[str]
    links: dict[str, str]
    ws: Path


def start_server(ws: Path, reviewers: str = "ana,ben", config: Path | None = None) -> Served:
    """``weaklabel review serve`` in a subprocess on a free loopback port."""
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "weaklabel.cli", "review", "serve", "-w", str(ws),
         *(["-c", str(config)] if config else []), "--reviewers", reviewers, "--port", "0",
         "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    links: dict[str, str] = {}
    deadline = time.monotonic() + 60
    names = reviewers.split(",")
    assert proc.stdout is not None
    while len(links) < len(names):
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"server ended: {proc.stderr.read() if proc.stderr else ''}")
        name, _, url = line.strip().partition(": ")
        if name in names:
            links[name] = url
        assert time.monotonic() < deadline, "server did not print its links"
    wait_listening(links[names[0]])
    return Served(proc, links, ws)


def wait_listening(url: str) -> None:
    import time
    import urllib.request

    for _ in range(400):
        try:
            urllib.request.urlopen(url + "api/state", timeout=2).read()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} does not answer")


@pytest.fixture
def serve(rfx: ReviewFx):  # type: ignore[no-untyped-def]
    """A function starting the review server of ``rfx`` (images in a real inventory made
    by purge); every server still running is stopped at the end."""
    from weaklabel.images.purge import image_stage, run_purge

    run_purge(*image_stage(rfx.root, rfx.ws))
    started: list[Served] = []

    def start(reviewers: str = "ana,ben") -> Served:
        started.append(start_server(rfx.ws, reviewers, rfx.config))
        return started[-1]

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.terminate()
            s.proc.wait(timeout=30)
        for f in (s.proc.stdout, s.proc.stderr):
            if f:
                f.close()


@pytest.fixture
def served(serve):  # type: ignore[no-untyped-def]
    return serve()


CHATBOT = Path(__file__).resolve().parents[1] / "data" / "chatbot_sample.csv"


def build_chatbot_workspace(tmp: Path, copies: list[tuple[int, int]]) -> dict:
    """A propagated workspace of every other question of the bundled chatbot sample,
    row ``r``'s question posted ``n`` more times verbatim for each ``(r, n)`` of
    ``copies`` (ids ``<id>-copy<k>``): the regex tokenizer, real Word2Vec, KMeans and
    propagate. Returns the workspace, its config, the rows and the copies."""
    from weaklabel.config import load_config, with_overrides
    from weaklabel.labels.cluster import run_cluster
    from weaklabel.labels.propagate import run_propagate
    from weaklabel.text.embed import run_embed
    from weaklabel.text.tokens import run_tokenize

    root = Path(__file__).resolve().parents[2]
    rows = pd.read_csv(CHATBOT, dtype=str, keep_default_na=False).iloc[::2]
    rows = rows.reset_index(drop=True)
    extra = pd.DataFrame([{**rows.iloc[r].to_dict(), "id": f"{rows.iloc[r]['id']}-copy{k}"}
                          for r, n in copies for k in range(n)])
    posts = tmp / "posts.csv"
    pd.concat([rows, extra], ignore_index=True).to_csv(posts, index=False)
    cfg = with_overrides(load_config(root / "bench/chatbot/config.yaml"), {
        "workspace": str(tmp / "ws"), "posts.path": str(posts),
        "seed_keywords": str(root / "bench/chatbot/seed_keywords.yaml"),
        "tokenize.tokenizer": "regex", "tokenize.workers": 1, "embed.epochs": 5,
        "labelmap": str(tmp / "ws" / "labelmap.draft.yaml")})
    ws = Workspace(Path(cfg.workspace)).ensure()
    run_tokenize(ws, cfg, progress=False)
    run_embed(ws, cfg)
    run_cluster(ws, cfg)
    run_propagate(ws, cfg, progress=False)
    return {"ws": ws, "cfg": cfg, "rows": rows, "extra": extra}


@pytest.fixture(scope="session")
def chatbot_workspace():  # type: ignore[no-untyped-def]
    """:func:`build_chatbot_workspace`, for module fixtures."""
    return build_chatbot_workspace
