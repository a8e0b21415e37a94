"""``weaklabel report``: one self-contained HTML page to look at the data set.

Everything is inline: CSS, SVG charts and JPEG thumbnails as ``data:`` URIs; a Content
Security Policy forbids any other source, so the page opens the same offline, from a mail
attachment or an object store. A few lines of inline JavaScript only mark, on load, how
many thumbnails decoded (``body[data-thumbs-ok]``), for the tests.

Sections: the funnel (posts → sampled), per-label counts and a confidence histogram, a
contact sheet per label (most and least confident images side by side, so wrong labels
jump out), the clusters and their labels, purge reasons, duplicate groups and, with a
gold file, the ``eval`` metrics. A section whose stage has not run says so.

Thumbnails (JPEG, ``thumb_size`` px, decoded in draft mode) are cached in
``WORKSPACE/thumbs/`` under a key of the file's absolute path, size and mtime and the
thumbnail size, so a second report reads no image again.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN, POST_LABELS, POSTS
from weaklabel.dataset.contracts import SAMPLE
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace, atomic_write_text

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.config import Config

log = logging.getLogger(__name__)

THUMBS = "thumbs"
SHEET = 8
"""Thumbnails per side of a label's contact sheet (most / least confident)."""
MAX_GROUPS = 24
MAX_PURGED = 200
NOT_RUN = "not run yet"

# --- thumbnails ----------------------------------------------------------------------------

THUMB_RULES = 2
"""How a thumbnail is made (2: 16-bit and float pictures scaled to 8 bits, not clipped
white): part of its cache key, so a change makes every thumbnail again."""


def thumb_key(path: Path, size: int) -> str | None:
    """Cache key of a thumbnail: absolute path, file size, mtime, thumbnail size and
    :data:`THUMB_RULES`."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    raw = f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{size}\0{THUMB_RULES}"
    return hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()


def make_thumbnail(src: Path, size: int = 128) -> bytes:
    """A JPEG thumbnail of ``src`` that fits ``size``×``size`` (draft-mode decode)."""
    import io

    from PIL import Image, ImageOps

    from weaklabel.images.hashes import eight_bit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Corrupt EXIF data": purge's business
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(src) as f:
            f.draft("RGB", (size, size))  # JPEG: decode at 1/2…1/8 scale
            im = eight_bit(ImageOps.exif_transpose(f))  # a 16-bit grey photo is not white
            im.thumbnail((size, size))
            if im.mode != "RGB":
                # through RGBA, so a transparent background turns black, not noise
                im = im.convert("RGBA").convert("RGB") if "A" in im.mode or im.mode == "P" \
                    else im.convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80, optimize=True)
    return buf.getvalue()


class ThumbCache:
    """Thumbnails made once and kept in ``WORKSPACE/thumbs``; failures are counted."""

    def __init__(self, folder: Path, size: int = 128) -> None:
        self.folder = folder
        self.size = size
        self.made = 0
        self.cached = 0
        self.failed: dict[str, str] = {}
        self._swept = False

    def get(self, path: Path) -> bytes | None:
        key = thumb_key(path, self.size)
        if key is None:
            self.failed[str(path)] = "not found"
            return None
        target = self.folder / key[:2] / f"{key}.jpg"
        if target.exists():
            self.cached += 1
            return target.read_bytes()
        try:
            data = make_thumbnail(path, self.size)
        except Exception as exc:  # any decoder failure: one placeholder, not a crash
            self.failed[str(path)] = type(exc).__name__
            return None
        self._store(target, data)
        self.made += 1
        return data

    def _store(self, target: Path, data: bytes) -> None:
        """Write ``target`` through a temporary file in the cache's own folder, where the
        first write of a run removes those of runs that died (a kill -9 mid-write), so
        none is left in the shard folders, which no run lists."""
        from weaklabel import wsbase

        if not self._swept:
            wsbase.remove_stale_tmp(os.fspath(self.folder))
            self._swept = True
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{target.name}.{os.getpid()}.tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)  # never write through a link planted at our temporary name
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


# --- SVG charts ----------------------------------------------------------------------------

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")


def esc(text: Any) -> str:
    """HTML-escape any value (quotes too, so it is safe in attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def svg_hbars(rows: Sequence[tuple[str, int | None]], *, width: int = 640,
              title: str = "") -> str:
    """Horizontal bars, one per (label, value); ``None`` draws "not run yet"."""
    bar_h, gap, left, right = 22, 6, 190, 70
    h = len(rows) * (bar_h + gap) + gap
    top = max([v for _, v in rows if v is not None] or [1]) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
           f'height="{h}" viewBox="0 0 {width} {h}"><title>{esc(title)}</title>']
    for i, (label, v) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        out.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{esc(label)}</text>')
        if v is None:
            out.append(f'<text x="{left}" y="{y + 15}" class="muted">{NOT_RUN}</text>')
            continue
        w = 0 if top == 0 else round((width - left - right) * v / top, 1)
        out.append(f'<rect x="{left}" y="{y}" width="{w}" height="{bar_h}" '
                   f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{left + w + 6}" y="{y + 15}">{v:,}</text>')
    out.append("</svg>")
    return "".join(out)


def histogram(values: Sequence[float], bins: int = 10) -> list[int]:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1] (1.0 in the last)."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(float(v) * bins)))] += 1
    return counts


def svg_histogram(series: Mapping[str, Sequence[int]], *, width: int = 640,
                  height: int = 220, title: str = "") -> str:
    """Stacked vertical bars over [0, 1]; ``series`` maps a name to per-bin counts."""
    names = list(series)
    bins = len(next(iter(series.values()))) if series else 10
    left, bottom, top_pad = 50, 40, 24
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    totals = [sum(series[n][b] for n in names) for b in range(bins)]
    peak = max(totals or [1]) or 1
    bw = plot_w / bins
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}"><title>{esc(title)}</title>',
           f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end">{peak:,}</text>',
           f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>']
    for b in range(bins):
        x = left + b * bw
        y = float(top_pad + plot_h)
        for k, n in enumerate(names):
            hgt = plot_h * series[n][b] / peak
            y -= hgt
            out.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bw - 2:.1f}" '
                       f'height="{hgt:.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                       f'<title>{esc(n)}: {series[n][b]}</title></rect>')
        out.append(f'<text x="{x + bw / 2:.1f}" y="{top_pad + plot_h + 16}" '
                   f'text-anchor="middle">{b / bins:.1f}</text>')
    for k, n in enumerate(names):
        x = left + k * 110
        out.append(f'<rect x="{x}" y="{height - 14}" width="10" height="10" '
                   f'fill="{PALETTE[k % len(PALETTE)]}"/><text x="{x + 14}" '
                   f'y="{height - 5}">{esc(n)}</text>')
    out.append("</svg>")
    return "".join(out)


# --- the page ------------------------------------------------------------------------------


@dataclass
class ReportData:
    """Everything the page shows; ``None`` marks an input whose stage has not run."""

    workspace: str
    posts: int | None = None
    post_labels: pd.DataFrame | None = None
    image_labels: pd.DataFrame | None = None
    funnel: dict[str, int | None] = field(default_factory=dict)
    sample: pd.DataFrame | None = None
    clusters: pd.DataFrame | None = None
    purge: pd.DataFrame | None = None
    duplicates: pd.DataFrame | None = None
    eval: dict[str, Any] | None = None
    names: dict[str, str] = field(default_factory=dict)
    background: str | None = None
    cluster_labels: dict[int, str] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    review: dict[str, Any] | None = None


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans KR","Malgun Gothic",
sans-serif;margin:0 auto;max-width:1200px;padding:0 24px 48px;color:#222}
h1{font-size:24px;margin:24px 0 4px}h2{font-size:19px;margin:32px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0}td,th{border-bottom:1px solid #eee;
padding:3px 10px;text-align:left;vertical-align:top}td.n,th.n{text-align:right}
.muted,.notrun{color:#888}.notrun{font-style:italic}svg text{font-size:12px;fill:#333}
svg text.muted{fill:#999;font-style:italic}nav a{margin-right:12px}
.sheet{display:grid;grid-template-columns:1fr 1fr;gap:16px}.strip{display:flex;
flex-wrap:wrap;gap:6px}figure{margin:0;width:132px}figure img,.ph{width:128px;
height:128px;object-fit:contain;background:#f3f3f3;border:1px solid #ddd;display:block}
.ph{display:flex;align-items:center;justify-content:center;color:#999;font-size:12px}
figcaption{font-size:11px;color:#555;overflow:hidden;white-space:nowrap;
text-overflow:ellipsis}.group{border:1px solid #eee;padding:6px;margin:6px 0}
.kept img{border:2px solid #59a14f}code{font-size:12px}
"""

SCRIPT = """
window.addEventListener('error',function(){var b=document.body;
b.dataset.jsErrors=String((+b.dataset.jsErrors||0)+1);},true);
window.addEventListener('load',function(){var imgs=document.querySelectorAll('img.thumb'),
ok=0;for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}
document.body.dataset.thumbsOk=String(ok);document.body.dataset.thumbsTotal=
String(imgs.length);});
"""

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'")


def _not_run(stage: str) -> str:
    return f'<p class="notrun">{NOT_RUN}: run <code>weaklabel {esc(stage)}</code>.</p>'


def _table(heads: Sequence[str], rows: Sequence[Sequence[Any]],
           numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(heads)
    th = "".join(f'<th{" class=n" if n else ""}>{esc(h)}</th>'
                 for h, n in zip(heads, numeric, strict=True))
    body = []
    for r in rows:
        body.append("<tr>" + "".join(
            f'<td{" class=n" if n else ""}>{esc(v)}</td>'
            for v, n in zip(r, numeric, strict=True)) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


Thumb = Callable[[str], tuple[bytes | None, str]]
"""image path → (JPEG bytes or None, a note such as "quarantined")."""


def _figure(image: str, caption: str, title: str, thumb: Thumb | None,
            cls: str = "") -> str:
    data, note = thumb(image) if thumb else (None, "no image root")
    cap = caption + (f" · {note}" if note else "")
    tip = esc(f"{title}\n{image}".strip())
    if data is None:
        inner = f'<div class="ph" title="{tip}">{esc(note or "no image")}</div>'
    else:
        inner = (f'<img class="thumb" src="{data_uri(data)}" alt="{esc(image)}" '
                 f'title="{tip}" width="128" height="128">')
    return f'<figure class="{cls}">{inner}<figcaption>{esc(cap)}</figcaption></figure>'


def _snippet(text: str, n: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def section_funnel(d: ReportData) -> str:
    rows = [(k, d.funnel.get(k)) for k in
            ("posts", "seeded", "propagated", "images", "after purge", "after dedup",
             "sampled")]
    return ('<h2 id="funnel">Funnel</h2><p class="muted">posts → seeded by keywords → '
            "labelled after KNN propagation → their labelled images → after purge → after "
            "dedup → sampled.</p>" + svg_hbars(rows, title="funnel"))


def section_labels(d: ReportData) -> str:
    out = ['<h2 id="labels">Labels</h2>']
    if d.post_labels is None:
        return out[0] + _not_run("propagate")
    pl = d.post_labels
    posts = pl.loc[pl["label"] != ABSTAIN, "label"].value_counts().to_dict()
    imgs: dict[str, int] = {}
    if d.image_labels is not None:
        from weaklabel.dataset.sample import resolve_images

        il = resolve_images(d.image_labels, comment_weight=0.0)
        imgs = il["label"].value_counts().to_dict()
    sampled = d.sample["label"].value_counts().to_dict() if d.sample is not None else {}
    labels = list(d.names) + sorted(str(lab) for lab in set(posts) - set(d.names))
    rows: list[list[Any]] = [
        [lab, str(d.names.get(lab, lab)) + (" (background)" if lab == d.background else ""),
         posts.get(lab, 0), imgs.get(lab, 0),
         sampled.get(lab, 0) if d.sample is not None else NOT_RUN] for lab in labels]
    rows.append([ABSTAIN or "(abstain)", "no label", int((pl["label"] == ABSTAIN).sum()),
                 "", ""])
    out.append(_table(["label", "name", "posts", "images", "sampled"], rows,
                      [False, False, True, True, True]))
    out.append(svg_hbars([(lab, posts.get(lab, 0)) for lab in labels],
                         title="labelled posts per label"))
    lab_mask = pl["label"] != ABSTAIN
    series = {s: histogram(pl.loc[lab_mask & (pl["source"] == s), "confidence"].tolist())
              for s in ("seed", "knn")}
    out.append("<h3>Confidence of labelled posts</h3>")
    out.append(svg_histogram(series, title="confidence histogram"))
    return "".join(out)


def section_sheets(d: ReportData, thumb: Thumb | None) -> str:
    out = ['<h2 id="sheets">Contact sheets</h2>']
    if d.sample is not None:
        pool, what = d.sample, "sampled images"
    elif d.image_labels is not None:
        pool = d.image_labels[d.image_labels["label"] != ABSTAIN].drop_duplicates("image")
        what = "labelled images (sample not run yet)"
    else:
        return out[0] + _not_run("propagate")
    out.append(f'<p class="muted">Per label, {what}: the {SHEET} most confident (left) '
               f"and the {SHEET} least confident (right). Hover for the caption.</p>")
    if thumb is None:
        out.append('<p class="notrun">no image root: pass --image-root or set images.root '
                   "to see thumbnails.</p>")
    labels = [lab for lab in d.names if lab in set(pool["label"])]
    labels += sorted(set(pool["label"]) - set(labels))
    for lab in labels:
        g = pool[pool["label"] == lab].sort_values(["confidence", "image"],
                                                   ascending=[False, True], kind="mergesort")
        hi = g.head(SHEET)
        lo = g.iloc[len(hi):].tail(SHEET).iloc[::-1]
        out.append(f"<h3>{esc(lab)} — {esc(d.names.get(lab, lab))} "
                   f'<span class="muted">({len(g)})</span></h3><div class="sheet">')
        for part, rows in (("most confident", hi), ("least confident", lo)):
            figs = [_figure(r.image, f"{r.confidence:.2f}",
                            d.captions.get(str(r.post_id), ""), thumb)
                    for r in rows.itertuples(index=False)]
            body = "".join(figs) or '<span class="muted">—</span>'
            out.append(f'<div><div class="muted">{part}</div><div class="strip">{body}'
                       "</div></div>")
        out.append("</div>")
    return "".join(out)


def section_clusters(d: ReportData) -> str:
    out = ['<h2 id="clusters">Clusters</h2>']
    if d.clusters is None:
        return out[0] + _not_run("cluster")
    c = d.clusters
    rows = []
    for r in c.to_dict(orient="records"):
        cid = int(r["cluster"])
        lab = d.cluster_labels.get(cid) or (str(r.get("label") or "") if "label" in c else "")
        rows.append([cid, r.get("size", ""), r.get("count", ""), lab or "—",
                     r.get("top_words", "")])
    out.append(_table(["cluster", "words", "count", "label", "top words"], rows,
                      [True, True, True, False, False]))
    return "".join(out)


def section_purge(d: ReportData) -> str:
    out = ['<h2 id="purge">Purge</h2>']
    if d.purge is None:
        return out[0] + _not_run("purge")
    p = d.purge
    counts = p["status"].value_counts()
    out.append(_table(["status", "files"], [[s, int(n)] for s, n in counts.items()],
                      [False, True]))
    bad = p[p["status"] != "ok"].sort_values(["status", "path"], kind="mergesort")
    if len(bad):
        out.append(f"<h3>Files left out ({len(bad)})</h3>")
        out.append(_table(["path", "status", "reason"],
                          bad[["path", "status", "reason"]].head(MAX_PURGED).values.tolist()))
        if len(bad) > MAX_PURGED:
            out.append(f'<p class="muted">… and {len(bad) - MAX_PURGED} more in '
                       "purge.csv</p>")
    return "".join(out)


def section_duplicates(d: ReportData, thumb: Thumb | None) -> str:
    out = ['<h2 id="duplicates">Duplicate groups</h2>']
    if d.duplicates is None:
        return out[0] + _not_run("dedup")
    dup = d.duplicates
    if not len(dup):
        return out[0] + '<p class="muted">no duplicates found.</p>'
    sizes = dup.groupby("group").size().sort_values(ascending=False, kind="mergesort")
    kinds = dup["kind"].value_counts().to_dict()
    out.append(f'<p class="muted">{sizes.size} groups, {kinds.get("exact", 0)} exact and '
               f'{kinds.get("near", 0)} near duplicates; the largest {MAX_GROUPS} groups '
               "(kept copy framed green).</p>")
    for gid in sorted(sizes.index[:MAX_GROUPS], key=lambda g: (-sizes[g], g)):
        rows = dup[dup["group"] == gid].sort_values("duplicate", kind="mergesort")
        kept = str(rows["kept"].iloc[0])
        figs = [_figure(kept, "kept", kept, thumb, "kept")]
        figs += [_figure(str(r.duplicate), f"{r.kind} {int(r.distance)}", str(r.reason),
                         thumb) for r in rows.itertuples(index=False)]
        out.append(f'<div class="group"><div class="muted">group {int(gid)}</div>'
                   f'<div class="strip">{"".join(figs)}</div></div>')
    return "".join(out)


def section_eval(d: ReportData) -> str:
    out = ['<h2 id="eval">Evaluation against gold</h2>']
    m = d.eval
    if m is None:
        return out[0] + ('<p class="notrun">no gold file given (pass --gold GOLD.csv).</p>')
    out.append(f"<p>posts {m['posts']} · coverage {m['coverage']:.1%} · accuracy on covered "
               f"{m['accuracy']:.3f} · macro-F1 {m['macro_f1']:.3f}</p>")
    rows = [[lab, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}",
             v["support"], v["predicted"]] for lab, v in m["per_label"].items()]
    out.append(_table(["label", "precision", "recall", "F1", "support", "predicted"], rows,
                      [False, True, True, True, True, True]))
    subs = [[n, f"{s['coverage']:.1%}", f"{s['accuracy']:.3f}", f"{s['macro_f1']:.3f}"]
            for n, s in m.get("subsets", {}).items()]
    if subs:
        out.append(_table(["subset", "coverage", "accuracy", "macro-F1"], subs,
                          [False, True, True, True]))
    return "".join(out)


def _section_review(d: ReportData) -> str:
    from weaklabel.review.summary import section_html

    return section_html(d.review)


def render_report(d: ReportData, *, thumb: Thumb | None) -> str:
    """The whole page as one HTML string (no I/O but ``thumb``)."""
    title = f"weaklabel report — {d.workspace}"
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("funnel", "Funnel"), ("labels", "Labels"), ("sheets", "Contact sheets"),
        ("clusters", "Clusters"), ("purge", "Purge"), ("duplicates", "Duplicates"),
        ("review", "Review"), ("eval", "Evaluation")))
    notes = "".join(f'<p class="muted">{esc(n)}</p>' for n in d.notes)
    parts = [
        "<!DOCTYPE html>", '<html lang="ko"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style><script>{SCRIPT}</script>",
        f"</head><body><h1>{esc(title)}</h1><nav>{nav}</nav>{notes}",
        section_funnel(d), section_labels(d), section_sheets(d, thumb),
        section_clusters(d), section_purge(d), section_duplicates(d, thumb),
        _section_review(d), section_eval(d), "</body></html>\n",
    ]
    return "\n".join(parts)


# --- I/O -----------------------------------------------------------------------------------


def gather(ws: Workspace, cfg: Config) -> ReportData:
    """Read whatever artifacts exist in ``ws`` into a :class:`ReportData` (the label map
    from ``cfg.labelmap``, the eval section from ``cfg.gold``)."""
    d = ReportData(workspace=str(ws.root))
    posts = _read_artifacts(ws, d)
    _read_labelmap(d, cfg.labelmap)
    from weaklabel.review.summary import review_summary

    d.review = review_summary(ws.root, posts=d.posts)
    if cfg.gold:
        from weaklabel.labels.evaluate import eval_files

        d.eval = eval_files(ws.require("post_labels.parquet"), Path(cfg.gold))
    d.funnel = _funnel(d, comment_weight=float(cfg.sample.comment_weight))
    d.captions = _captions(d, posts)
    return d


def _read_artifacts(ws: Workspace, d: ReportData) -> pd.DataFrame | None:
    """Fill ``d`` with the artifacts present; return the posts' ids and captions."""
    from weaklabel.dataset.sample import load_labels_for_sampling, read_duplicates, read_purge

    has = lambda name: ws.path(name).exists()  # noqa: E731
    posts = None
    if has("posts.parquet"):
        posts = ws.read("posts.parquet", POSTS)[["post_id", "caption"]]
        d.posts = len(posts)
    if has("post_labels.parquet"):
        d.post_labels = ws.read("post_labels.parquet", POST_LABELS)
    if has("image_labels.parquet"):
        d.image_labels, _, notes = load_labels_for_sampling(ws)
        d.notes += notes
    if has("purge.csv"):
        d.purge = read_purge(ws.path("purge.csv"))
    if has("duplicates.csv"):
        d.duplicates = read_duplicates(ws.path("duplicates.csv"))
    if has("sample.parquet"):
        d.sample = ws.read("sample.parquet", SAMPLE)
    if has("clusters.csv"):
        from weaklabel.posts import read_table_csv

        d.clusters = read_table_csv(ws.path("clusters.csv"), what="clusters table",
                                    encoding="utf-8", dtype=None)
    return posts


def _read_labelmap(d: ReportData, lm_path: str | None) -> None:
    if lm_path is not None and Path(lm_path).is_file():
        from weaklabel.labels.labelmap import load_labelmap

        lm = load_labelmap(lm_path)
        d.names = {lab.id: lab.name for lab in lm.labels}
        d.background = lm.background
        d.cluster_labels = {c: lab.id for lab in lm.labels for c in lab.clusters}


def _funnel(d: ReportData, *, comment_weight: float) -> dict[str, int | None]:
    """Posts → seeded → propagated → images → after purge/dedup → sampled (None: the
    stage has not run)."""
    from weaklabel.dataset.sample import sample_images

    f: dict[str, int | None] = dict.fromkeys(
        ("posts", "seeded", "propagated", "images", "after purge", "after dedup", "sampled"))
    f["posts"] = d.posts if d.posts is not None else (
        len(d.post_labels) if d.post_labels is not None else None)
    if d.post_labels is not None:
        f["seeded"] = int((d.post_labels["source"] == "seed").sum())
        f["propagated"] = int((d.post_labels["label"] != ABSTAIN).sum())
    if d.image_labels is not None:
        res = sample_images(d.image_labels, purge=d.purge,
                            duplicates=d.duplicates, per_post=0, per_label=2**62,
                            comment_weight=comment_weight)
        total = res.funnel.iloc[-1]
        f["images"] = int(total["labelled"])
        if d.purge is not None:
            f["after purge"] = int(total["after_purge"])
        if d.duplicates is not None:
            f["after dedup"] = int(total["after_dedup"])
    if d.sample is not None:
        f["sampled"] = len(d.sample)
    return f


def _captions(d: ReportData, posts: pd.DataFrame | None) -> dict[str, str]:
    """Caption snippets of the posts the contact sheets show."""
    shown: set[str] = set()
    if d.sample is not None:
        shown |= set(d.sample["post_id"])
    elif d.image_labels is not None:
        shown |= set(d.image_labels["post_id"])
    if posts is None or not shown:
        return {}
    sel = posts[posts["post_id"].isin(shown)]
    return {str(p): _snippet(c or "") for p, c in zip(sel["post_id"], sel["caption"],
                                                       strict=True)}


def image_locator(ws: Workspace, root: Path) -> Callable[[str], tuple[Path | None, str]]:
    """image path → its file: under ``root``, else in the quarantine (newest run first)."""
    qroot = ws.path("quarantine")
    runs = sorted((p for p in qroot.iterdir() if p.is_dir()), reverse=True) \
        if qroot.is_dir() else []

    from weaklabel.containment import fs_form, stays_inside

    def locate(image: str) -> tuple[Path | None, str]:
        # Never through a symlink: a folder on the way may lead out of the root.
        image = fs_form(image)  # artifacts hold undecodable bytes as \xNN
        p = stays_inside(os.fspath(root), image)
        if p is not None and os.path.isfile(p):
            return Path(p), ""
        for r in runs:
            q = stays_inside(os.fspath(r), image)
            if q is not None and os.path.isfile(q):
                return Path(q), "quarantined"
        return None, "missing"

    return locate


REPORT_READS = ("posts.parquet", "post_labels.parquet", "keyword_labels.parquet",
                "image_labels.parquet", "reviewed_images.parquet", "purge.csv",
                "duplicates.csv", "sample.parquet", "clusters.csv")
"""The workspace artifacts the report shows (each optional), recorded in its meta."""


@dataclass(frozen=True)
class ReportSummary(Summary):
    """What ``report`` wrote: the page, its size, the thumbnails and the stages whose
    sections say "not run yet"."""

    path: str
    bytes: int
    made: int = 0
    cached: int = 0
    failed: int = 0
    not_run: tuple[str, ...] = ()

    def text(self) -> str:
        return (f"report of {self.bytes // 1024} KiB; thumbnails: {self.made} made, "
                f"{self.cached} cached, {self.failed} unreadable")


def run_report(ws: Workspace, cfg: Config, *, force: bool = False,
               progress: bool = True) -> StageReport[ReportSummary]:
    """Write the HTML report of whatever the workspace holds.

    Settings: ``cfg.report.output`` (default ``WORKSPACE/report.html``) and
    ``thumb_size``; thumbnails come from the image root (``images.root``, else
    ``posts.image_root``; without one, placeholders), display names from
    ``cfg.labelmap``, the eval section from ``cfg.gold``.

    The report is a view, never an input: it is redrawn on every call (its thumbnails
    come from image files no meta hashes, its review section from a live decisions
    database), which the thumbnail cache keeps cheap. ``force`` changes nothing.
    """
    from weaklabel.config import as_dict, image_root_of

    root = image_root_of(cfg)
    target = Path(cfg.report.output) if cfg.report.output else ws.path("report.html")
    inputs: dict[str, Path | str] = {n: ws.path(n) for n in REPORT_READS
                                     if ws.path(n).exists()}
    for key, given in (("labelmap", cfg.labelmap), ("gold", cfg.gold)):
        if given and Path(given).is_file():
            inputs[key] = Path(given)
    ws.ensure()
    params = {"report": as_dict(cfg.report), "image_root": str(root) if root else None}
    with ws.stage("report", outputs=(target,), params=params, inputs=inputs,
                  summary=ReportSummary, force=True) as st:
        d = gather(ws, cfg)
        cache = ThumbCache(ws.path(THUMBS), cfg.report.thumb_size)
        page = render_report(d, thumb=_thumbs(ws, root, cache))
        atomic_write_text(target, page)
        not_run = tuple(k for k, v in (("propagate", d.post_labels), ("purge", d.purge),
                                       ("dedup", d.duplicates), ("sample", d.sample),
                                       ("cluster", d.clusters)) if v is None)
        st.done(ReportSummary(path=str(target), bytes=len(page.encode()), made=cache.made,
                              cached=cache.cached, failed=len(cache.failed),
                              not_run=not_run))
    return st.report


def _thumbs(ws: Workspace, root: Path | None, cache: ThumbCache) -> Thumb | None:
    """image path → (thumbnail JPEG or None, note), from the cache; None without a root."""
    if root is None:
        return None
    locate = image_locator(ws, root)

    def from_cache(image: str) -> tuple[bytes | None, str]:
        p, note = locate(image)
        if p is None:
            return None, note
        data = cache.get(p)
        return data, (note if data is not None else "unreadable")

    return from_cache
