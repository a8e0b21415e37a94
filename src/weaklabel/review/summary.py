"""What review has measured: reviewed share, precision per label, agreement.

Precision per label comes only from decisions on the *random slice* (``slice`` set, see
:func:`~weaklabel.review.triage.in_random_slice`): the queue puts likely-wrong items
first, so the accept rate of the rest of the reviewed items underestimates precision.
An item's verdict is *right* when the reviewer accepted the shown label (or relabelled
it to the same one).

Agreement is Cohen's κ between two reviewers over the items both decided, per label
(the shown one); a verdict is the label the reviewer gave, or "not <label>" for a reject.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from weaklabel.review.store import DECISIONS_DB, Decision, DecisionStore, effective


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's κ of two raters' labels for the same items (None when undefined).

    Example:
        >>> cohen_kappa(["x", "y", "x", "y"], ["x", "y", "x", "x"])
        0.5
    """
    n = len(a)
    if n == 0 or n != len(b):
        return None
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    pe = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else None
    return round((po - pe) / (1 - pe), 4)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (round(max(0.0, c - h), 4), round(min(1.0, c + h), 4))


def verdict(d: Decision) -> str:
    """What a decision says the item is: a label, ``(none)``, or ``not <label>``."""
    if d.action == "accept":
        return d.shown
    if d.action == "relabel":
        return d.label or "(none)"
    return f"not {d.shown}"


def summarize(decisions: Sequence[Decision], *, posts: int | None = None) -> dict[str, Any]:
    """Reviewed share, per-label precision from the random slice, and agreement."""
    standing = list(effective(decisions).values())
    reviewed_posts = {d.post_id for d in standing if d.post_id}
    per_label: dict[str, dict[str, Any]] = {}
    slice_hits: dict[str, list[bool]] = defaultdict(list)
    for d in standing:
        if d.shown and d.slice:
            slice_hits[d.shown].append(verdict(d) == d.shown)
    labels = sorted({d.shown for d in standing if d.shown})
    for lab in labels:
        hits = slice_hits.get(lab, [])
        k, n = sum(hits), len(hits)
        per_label[lab] = {
            "reviewed": sum(1 for d in standing if d.shown == lab),
            "slice_reviewed": n,
            "precision": round(k / n, 4) if n else None,
            "interval": wilson(k, n) if n else None,
            "kappa": None,
        }
    by_item: dict[tuple[str, str], dict[str, Decision]] = defaultdict(dict)
    for d in standing:
        by_item[(d.post_id, d.image)][d.reviewer] = d
    reviewers = sorted({d.reviewer for d in standing})
    pairs: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    overall: tuple[list[str], list[str]] = ([], [])
    for ra, rb in combinations(reviewers, 2):
        for votes in by_item.values():
            if ra in votes and rb in votes:
                lab = votes[ra].shown
                pairs[lab][0].append(verdict(votes[ra]))
                pairs[lab][1].append(verdict(votes[rb]))
                overall[0].append(verdict(votes[ra]))
                overall[1].append(verdict(votes[rb]))
    for lab, (a, b) in pairs.items():
        if lab in per_label:
            per_label[lab]["kappa"] = cohen_kappa(a, b)
            per_label[lab]["double_reviewed"] = len(a)
    return {
        "decisions": len(decisions), "standing": len(standing), "reviewers": reviewers,
        "reviewed_posts": len(reviewed_posts),
        "reviewed_share": round(len(reviewed_posts) / posts, 4) if posts else None,
        "labels": per_label, "kappa": cohen_kappa(*overall) if overall[0] else None,
        "double_reviewed": len(overall[0]),
    }


def review_summary(ws_root: Path | str, *, posts: int | None = None) -> dict[str, Any] | None:
    """:func:`summarize` of a workspace's decisions, or None when nobody reviewed yet."""
    if not (Path(ws_root) / DECISIONS_DB).exists():
        return None
    with DecisionStore.open(ws_root) as store:
        return summarize(store.decisions(), posts=posts)


def section_html(s: dict[str, Any] | None) -> str:
    """The report's "Human review" section."""
    head = '<h2 id="review">Human review</h2>'
    if s is None:
        return head + ('<p class="notrun">nobody has reviewed labels yet: run '
                       "<code>weaklabel review serve</code>.</p>")
    share = "" if s["reviewed_share"] is None else f" ({s['reviewed_share']:.1%} of posts)"
    kappa = "" if s["kappa"] is None else \
        f" · agreement κ {s['kappa']:.3f} on {s['double_reviewed']} items reviewed twice"
    out = [head, f"<p>{s['standing']} standing decisions by {len(s['reviewers'])} "
                 f"reviewer(s) on {s['reviewed_posts']} posts{share}{kappa}. Precision is "
                 "measured on the random slice only (the queue shows likely-wrong labels "
                 "first).</p>",
           "<table><thead><tr><th>label</th><th class=n>reviewed</th>"
           "<th class=n>random slice</th><th class=n>precision</th><th>95 % interval</th>"
           "<th class=n>κ</th></tr></thead><tbody>"]
    for lab, v in s["labels"].items():
        prec = "–" if v["precision"] is None else f"{v['precision']:.3f}"
        iv = "–" if v["interval"] is None else f"{v['interval'][0]:.2f}–{v['interval'][1]:.2f}"
        kp = "–" if v["kappa"] is None else f"{v['kappa']:.3f}"
        out.append(f"<tr><td>{html.escape(lab)}</td><td class=n>{v['reviewed']}</td>"
                   f"<td class=n>{v['slice_reviewed']}</td><td class=n>{prec}</td>"
                   f"<td>{iv}</td><td class=n>{kp}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)
