"""A hostile dump through ``weaklabel build``, end to end with images (issue 7).

The dump is made here, in tmp_path: real JPEG/PNG files made with PIL, real symlinks
(out of the root, loops, a symlinked date folder), a FIFO, a UNIX socket, a
decompression bomb, a truncated file, names with a newline and with bytes that are not
UTF-8 (one of them in an exact-duplicate group, with labels: issue 7 case 3), and posts
that point at all of them. The real CLI runs every stage (real Okt, gensim, sklearn,
SQLite). Nothing from outside the root may reach the data set or the manifest, and
every file purge skipped is counted.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from weaklabel.cli import app

NONUTF8 = os.fsdecode(b"20190304/dup\xff\xfe.jpg")  # a surrogate-escaped name
NEWLINE = "20190305/new\nline.jpg"


def photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.fromarray((rng.random((5, 6, 3)) * 255).astype("uint8")).resize(
        (120, 90), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def bomb_png(side: int = 60_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def hostile_tree(base: Path) -> tuple[Path, Path, dict[str, str]]:
    """The image root, a folder outside it, and image path → what it is."""
    root, outside = base / "images", base / "outside"
    for d in ("20190303", "20190304", "20190305", "weird", "loops"):
        (root / d).mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(photo(999))
    kinds: dict[str, str] = {}
    for i in range(30):
        (root / f"20190303/p{i}.jpg").write_bytes(photo(i))
        kinds[f"20190303/p{i}.jpg"] = "ok"
    # an exact twin of p0 whose name is not UTF-8: the most engaging post's, so kept
    with open(os.path.join(os.fsencode(root), os.fsencode(NONUTF8)), "wb") as f:
        f.write((root / "20190303/p0.jpg").read_bytes())
    kinds[NONUTF8] = "ok"
    (root / NEWLINE).write_bytes(photo(77))
    kinds[NEWLINE] = "ok"
    os.symlink("/etc", root / "weird/etc_dir")
    kinds["weird/etc_dir/passwd"] = "outside"
    os.symlink(outside / "secret.jpg", root / "20190305/link.jpg")
    kinds["20190305/link.jpg"] = "outside"
    os.symlink(outside, root / "20190306")                       # a symlinked date folder
    kinds["20190306/secret.jpg"] = "outside"
    os.symlink("b.jpg", root / "loops/a.jpg")                     # a symlink loop
    os.symlink("a.jpg", root / "loops/b.jpg")
    kinds["loops/a.jpg"] = "bad"
    os.symlink("..", root / "loops/up")                           # a folder loop
    kinds["loops/up/loops/up/20190303/p1.jpg"] = "bad"
    os.mkfifo(root / "20190305/fifo.jpg")
    kinds["20190305/fifo.jpg"] = "bad"
    sock = socket.socket(socket.AF_UNIX)                          # cannot be opened at all
    sock.bind(os.fspath(root / "20190305/sock.jpg"))
    sock.close()
    kinds["20190305/sock.jpg"] = "bad"
    # An unreadable file (chmod 000) is the obvious case, but the suite runs as root and
    # root reads it anyway; the FIFO and the socket above are the files no one can read.
    if os.geteuid() != 0:
        (root / "20190305/noperm.jpg").write_bytes(photo(55))
        os.chmod(root / "20190305/noperm.jpg", 0)
        kinds["20190305/noperm.jpg"] = "bad"
    (root / "20190305/bomb.png").write_bytes(bomb_png())
    kinds["20190305/bomb.png"] = "bad"
    data = photo(5)
    (root / "20190305/trunc.jpg").write_bytes(data[: len(data) // 2])
    kinds["20190305/trunc.jpg"] = "bad"
    kinds["20190305/missing.jpg"] = "bad"
    return root, outside, kinds


def write_posts(path: Path, corpus: list[dict[str, Any]], kinds: dict[str, str]) -> None:
    lips = [r for r in corpus if r["topic"] == "lips"]
    images = list(kinds)
    rows = []
    for i, r in enumerate(corpus):
        row: dict[str, Any] = {"post_id": r["post_id"], "caption": r["caption"],
                               "likes": i % 7, "comments": i % 3}
        rows.append(row)
    by_id = {r["post_id"]: r for r in rows}
    for n, img in enumerate(images):  # every image on a lips post; hostile ones first
        row = by_id[lips[n % len(lips)]["post_id"]]
        row.setdefault("images", []).append(img)
        row["likes"] = 1000 - n if kinds[img] != "ok" else row["likes"]
    by_id[lips[images.index(NONUTF8) % len(lips)]["post_id"]]["likes"] = 5000
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            # ensure_ascii writes the surrogate escapes as \udcff: valid JSON text
            f.write(json.dumps(row, ensure_ascii=True) + "\n")


@pytest.mark.jvm
@pytest.mark.slow
def test_build_on_a_hostile_dump(tmp_path: Path, corpus: list[dict[str, Any]],
                                 userdict_dir: Path, keyword_labelmap: Path) -> None:
    root, outside, kinds = hostile_tree(tmp_path)
    posts = tmp_path / "posts.jsonl"
    write_posts(posts, corpus, kinds)
    ws, out = tmp_path / "ws", tmp_path / "dataset"
    cfg = tmp_path / "build.yaml"
    cfg.write_text(json.dumps({
        "workspace": str(ws), "labelmap": str(keyword_labelmap), "output": str(out),
        "posts": {"path": str(posts), "image_root": str(root)},
        "tokenize": {"userdict": str(userdict_dir), "workers": 1},
        "embed": {"vector_size": 24, "min_count": 2, "epochs": 5},
        "cluster": {"k": 4},
        "images": {"workers": 1},
        "sample": {"per_label": 1000, "per_post": 0, "min_confidence": 0.0},
    }), encoding="utf-8")
    r = CliRunner().invoke(app, ["build", "-c", str(cfg), "-q"])
    assert r.exit_code == 0, (r.output, r.exception)

    # 1. nothing from outside the root: no inode, no content, no name
    outside_ids = {(os.stat(p).st_ino, os.stat(p).st_dev)
                   for p in (Path("/etc/passwd"), outside / "secret.jpg")}
    secret = (outside / "secret.jpg").read_bytes()
    exported = [p for p in out.rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")]
    assert exported
    root_ids = set()
    for dirpath, _, files in os.walk(os.fsencode(root)):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            root_ids.add((st.st_ino, st.st_dev))
    for p in exported:
        st = p.stat()
        assert (st.st_ino, st.st_dev) not in outside_ids and p.read_bytes() != secret
        assert (st.st_ino, st.st_dev) in root_ids  # hard links to files under the root
    manifest = (out / "manifest.jsonl").read_text(encoding="utf-8")
    table = pd.read_csv(out / "dataset.csv", keep_default_na=False)
    for bad in ("passwd", "secret", "link.jpg", "fifo", "sock", "bomb", "trunc", "loops",
                "missing"):
        assert bad not in manifest and not table["source"].str.contains(bad).any(), bad

    # 2. names of any bytes made it through every stage, in their text form
    assert "20190304/dup\\xff\\xfe.jpg" in set(table["source"])
    assert NEWLINE in set(table["source"])  # quoted by the CSV writer, newline and all
    lines = [json.loads(x) for x in manifest.splitlines()]
    assert len(lines) == len(table) == len(exported)
    dup = table.loc[table["source"] == "20190304/dup\\xff\\xfe.jpg", "path"].iloc[0]
    assert (out / dup).read_bytes() == (root / "20190303/p0.jpg").read_bytes()
    assert "20190303/p0.jpg" not in set(table["source"])  # its twin: one copy per group

    # 3. every file purge skipped is counted and listed (and in the report)
    purge = pd.read_csv(ws / "purge.csv", keep_default_na=False)
    status = dict(zip(purge["path"], purge["status"], strict=True))
    assert status["weird/etc_dir"] == "skipped" and status["20190306"] == "skipped"
    assert status["20190305/link.jpg"] == "skipped" and status["loops/a.jpg"] == "skipped"
    assert status["loops/up"] == "skipped"
    assert status["20190305/fifo.jpg"] == "unreadable"
    assert status["20190305/sock.jpg"] == "unreadable"
    assert status["20190305/bomb.png"] == "decompression_bomb"
    assert status["20190305/trunc.jpg"] == "truncated"
    assert status["20190304/dup\\xff\\xfe.jpg"] == "ok" and status[NEWLINE] == "ok"
    meta = json.loads((ws / "purge.csv.meta.json").read_text(encoding="utf-8"))
    assert meta["summary"]["counts"]["skipped"] == 6  # 3 links out, 2 looping, 1 folder loop
    assert meta["summary"]["counts"]["unreadable"] >= 2
    assert sum(meta["summary"]["counts"].values()) == len(purge)
    report = (ws / "report.html").read_text(encoding="utf-8")
    assert "decompression_bomb" in report and "skipped" in report
    assert f"Files left out ({int((purge['status'] != 'ok').sum())})" in report
    # the funnel says where the hostile posts' images went: dropped at purge, all of them
    funnel = pd.read_csv(ws / "sample_funnel.csv", keep_default_na=False).set_index("label")
    labels = pd.read_parquet(ws / "image_labels.parquet")
    labelled = set(labels.loc[labels["label"] != "", "image"])
    hostile = {k for k, v in kinds.items() if v != "ok"}
    assert len(hostile & labelled) >= 8
    total = funnel.loc["(total)"]
    assert total["labelled"] - total["after_purge"] == len(hostile & labelled)
    assert not hostile & set(pd.read_parquet(ws / "sample.parquet")["image"])

    # 4. the dedup artifacts hold the non-UTF-8 copy (case 3: no crash, meta written)
    assert (ws / "duplicates.csv.meta.json").exists()
    dups = pd.read_csv(ws / "duplicates.csv", keep_default_na=False)
    assert "20190304/dup\\xff\\xfe.jpg" in set(dups["kept"]) | set(dups["duplicate"])
