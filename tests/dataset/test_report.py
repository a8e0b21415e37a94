"""The HTML report: content, escaping, missing inputs, thumbnails, and a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from weaklabel.config import Config, ReportConfig, with_overrides
from weaklabel.dataset.report import (
    ReportSummary,
    histogram,
    make_thumbnail,
    run_report,
    thumb_key,
)
from weaklabel.dataset.sample import run_sample
from weaklabel.workspace import Workspace


def cfg_for(fx) -> Config:  # type: ignore[no-untyped-def]
    return with_overrides(Config(), {"workspace": str(fx.ws), "labelmap": str(fx.labelmap)})


def report(fx, tmp_path: Path, *, image_root: Path | None = None,  # type: ignore[no-untyped-def]
           gold: Path | None = None) -> tuple[str, ReportSummary]:
    out = tmp_path / "report.html"
    cfg = with_overrides(cfg_for(fx), {
        "report.output": str(out), "images.root": str(image_root) if image_root else None,
        "gold": str(gold) if gold else None})
    res = run_report(Workspace(fx.ws), cfg)
    assert res.outputs == (out,) and not res.up_to_date
    return out.read_text(encoding="utf-8"), res.summary


def test_histogram_bins() -> None:
    assert histogram([0.0, 0.05, 0.5, 0.99, 1.0], bins=10) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_thumbnail_is_small_jpeg_and_cached(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(big, "JPEG")
    data = make_thumbnail(big, 128)
    assert data[:2] == b"\xff\xd8"
    import io

    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) == 128
    k1 = thumb_key(big, 128)
    assert k1 != thumb_key(big, 64)
    Image.new("RGB", (1600, 1200), (0, 0, 0)).save(big, "JPEG")
    import os

    os.utime(big, ns=(1, 1))
    assert thumb_key(big, 128) != k1  # mtime (and size) change the key
    # so do the rules a thumbnail is made by: a white thumbnail of a 16-bit photo, made
    # before they scaled it, is not served again
    from weaklabel.dataset import report

    k2 = thumb_key(big, 128)
    monkey = report.THUMB_RULES
    try:
        report.THUMB_RULES = monkey - 1
        assert thumb_key(big, 128) != k2
    finally:
        report.THUMB_RULES = monkey


def test_report_sections_and_escaping(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_sample(Workspace(fx.ws), cfg_for(fx))
    page, res = report(fx, tmp_path, image_root=fx.root)
    assert res.made > 0 and res.failed == 0
    for anchor in ("funnel", "labels", "sheets", "clusters", "purge", "duplicates", "eval"):
        assert f'id="{anchor}"' in page
    # no external resources; the CSP forbids them anyway
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert "default-src 'none'" in page
    # user text is escaped: the caption's <script> and the cluster word <b>
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page
    assert "<b>bold" not in page and "틴트 &lt;b&gt;" in page
    assert page.count('<img class="thumb"') >= 4
    assert "image file is truncated" in page  # purge reason
    assert "입술 화장" in page and "no gold file given" in page
    # thumbnails cached: the second run makes none
    _, res2 = report(fx, tmp_path, image_root=fx.root)
    assert res2.made == 0 and res2.cached == res.made + res.cached
    assert list((fx.ws / "thumbs").rglob("*.jpg"))


def test_report_says_not_run_yet(fx_bare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page, res = report(fx_bare, tmp_path)
    assert set(res.not_run) == {"purge", "dedup", "sample"}
    assert page.count("not run yet") >= 3
    assert "run <code>weaklabel purge</code>" in page
    assert "no image root" in page


def test_report_on_empty_workspace(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws").ensure()
    out = tmp_path / "r.html"
    res = run_report(ws, Config(workspace=str(ws.root), report=ReportConfig(output=str(out))))
    assert out.exists() and "propagate" in res.summary.not_run
    assert json.loads((tmp_path / "r.html.meta.json").read_text())["stage"] == "report"


def test_report_with_gold(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gold = tmp_path / "gold.csv"
    gold.write_text("post_id,label\np01,lips\np02,nails\np06,nails\n", encoding="utf-8")
    page, _ = report(fx, tmp_path, gold=gold)
    assert "Evaluation against gold" in page and "macro-F1" in page
    assert "no gold file given" not in page


def test_report_thumbnail_of_corrupt_or_missing_file_is_a_placeholder(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Without a sample the contact sheets show labelled images: p05 is truncated, p04
    # is missing; neither may break the page.
    page, res = report(fx, tmp_path, image_root=fx.root)
    assert res.failed >= 1
    assert 'class="ph"' in page and "missing" in page


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed; install it with `apt-get update && apt-get "
                "install -y chromium` (the Makefile's test set-up does this)")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exe = _chromium()
    run_sample(Workspace(fx.ws), cfg_for(fx))
    page, res = report(fx, tmp_path, image_root=fx.root)
    html_path = tmp_path / "report.html"
    url = html_path.resolve().as_uri()
    n_imgs = page.count('<img class="thumb"')
    assert n_imgs > 0

    shot = tmp_path / "report.png"
    r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'p1'}",
                        f"--screenshot={shot}", "--window-size=1280,2000", url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        colors = im.convert("RGB").resize((64, 100)).getcolors(maxcolors=100_000)
        assert colors is not None and len(colors) > 50  # not a blank page

    r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'p2'}",
                        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                        "--dump-dom", url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    body = re.search(r"<body[^>]*>", r.stdout)
    assert body, r.stdout[:500]
    tag = body.group(0)
    assert f'data-thumbs-total="{n_imgs}"' in tag, tag
    assert f'data-thumbs-ok="{n_imgs}"' in tag, tag  # every thumbnail decoded
    assert "data-js-errors" not in tag, tag
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console  # no console errors or CSP violations


def test_a_thumbnail_write_killed_leaves_no_temporary_file_after_the_next_report(  # type: ignore[no-untyped-def]
        fx, tmp_path: Path) -> None:
    import signal
    import sys

    out = tmp_path / "report.html"
    src = str(Path(__file__).resolve().parents[2] / "src")
    # a real report, killed -9 as its first thumbnail is about to be renamed into place
    code = (f"import os, signal, sys; sys.path.insert(0, {src!r})\n"
            "from weaklabel.config import Config, with_overrides\n"
            "from weaklabel.dataset.report import run_report\n"
            "from weaklabel.workspace import Workspace\n"
            "real = os.replace\n"
            "def replace(a, b, **kw):\n"
            "    if os.sep + 'thumbs' + os.sep in os.fspath(b):\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    real(a, b, **kw)\n"
            "os.replace = replace\n"
            f"cfg = with_overrides(Config(), {{'workspace': {str(fx.ws)!r}, "
            f"'labelmap': {str(fx.labelmap)!r}, 'report.output': {str(out)!r}, "
            f"'images.root': {str(fx.root)!r}}})\n"
            f"run_report(Workspace({str(fx.ws)!r}), cfg)\n")
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    thumbs = fx.ws / "thumbs"
    assert len(list(thumbs.rglob("*.tmp"))) == 1  # the one being written
    _, summary = report(fx, tmp_path, image_root=fx.root)
    assert summary.made > 0
    assert not list(thumbs.rglob("*.tmp")) and len(list(thumbs.rglob("*.jpg"))) == summary.made


def test_a_thumbnail_of_a_photo_with_corrupt_exif_prints_no_python_warning(
        tmp_path: Path) -> None:
    import io
    import warnings

    im = Image.new("RGB", (64, 48), (10, 120, 200))
    exif = im.getexif()
    exif[0x0112] = 6
    exif[0x010F] = "camera"
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    data = bytearray(buf.getvalue())
    at = data.find(b"Exif\x00\x00") + 6
    data[at:at + 8] = b"MM\x00\x2a\xff\xff\xff\xff"  # the first IFD lies past the end
    src = tmp_path / "bad_exif.jpg"
    src.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        thumb = make_thumbnail(src, 32)
    assert thumb[:2] == b"\xff\xd8"
    assert [str(w.message) for w in seen] == []


def test_a_thumbnail_of_a_16_bit_grey_photo_is_not_white(tmp_path: Path) -> None:
    import io

    import numpy as np

    a = (np.random.default_rng(5).random((12, 16)) * 65535).astype("uint16")
    src = tmp_path / "scan.png"
    Image.fromarray(a).resize((160, 120), Image.Resampling.BILINEAR).save(src)
    with Image.open(io.BytesIO(make_thumbnail(src, 64))) as im:
        px = np.asarray(im.convert("L"), dtype=float)
    assert 60 < px.mean() < 200 and px.std() > 20  # the scan's own range, not all 255
