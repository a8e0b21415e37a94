"""A reviewed label map keeps its meaning when the corpus grows and is re-clustered.

Cluster ids are positions in one KMeans run: add a day of posts (or change the user
dictionary) and Word2Vec and KMeans run again, and cluster 20 is now some other set of
words. So the first time a label map is used, the words of every cluster it names are
pinned beside the workspace (``labelmap.pin.json``: the map's digest and, per cluster
id, its words: the cluster's fingerprint). Later runs with the same map compare:

* a cluster whose words are (almost) the same keeps its id;
* a cluster whose words moved, most of them (``min_share``) into one new cluster that no
  other label claims, is mapped to it, and the drift is reported;
* otherwise the meaning cannot be kept: :class:`~weaklabel.errors.ReviewNeeded` (exit 3)
  names the label map, the label, the cluster and where its words went.

Editing the map (a new digest) means a person looked at the current clusters: the pin
is renewed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from weaklabel.errors import ReviewNeeded
from weaklabel.labels.labelmap import LabelMap


@dataclass
class Drift:
    """How the clusters of a reviewed map moved: old id → new id, and the report."""

    mapping: dict[int, int]
    moved: list[str]


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def map_clusters(labelmap: LabelMap, pinned: dict[int, list[str]],
                 current: dict[int, list[str]], *, min_share: float = 0.6,
                 same: float = 0.8) -> Drift:
    """Map every cluster the map names from its pinned words to the current clusters.

    Raises:
        ReviewNeeded: a cluster's words are scattered, gone, or landed in a cluster
            another label claims.
    """
    where = {w: c for c, ws in current.items() for w in ws}
    mapping: dict[int, int] = {}
    owner: dict[int, str] = {}
    moved: list[str] = []
    problems: list[str] = []
    for lab in labelmap.labels:
        for c in lab.clusters:
            old = set(pinned.get(c, current.get(c, [])))
            if c in current and jaccard(old, set(current[c])) >= same:
                new = c
            else:
                hits = Counter(where[w] for w in sorted(old) if w in where)
                if not hits:
                    problems.append(f"{lab.id!r} cluster {c}: none of its words is "
                                    "clustered any more")
                    continue
                new, n = hits.most_common(1)[0]
                share = n / max(len(old), 1)
                if share < min_share:
                    spread = ", ".join(f"{k} ({v / len(old):.0%})"
                                       for k, v in hits.most_common(3))
                    problems.append(f"{lab.id!r} cluster {c}: its words are split over "
                                    f"clusters {spread}")
                    continue
                moved.append(f"{lab.id} cluster {c} → {new} ({share:.0%} of its words)")
            if owner.setdefault(new, lab.id) != lab.id:
                problems.append(f"{lab.id!r} cluster {c} and {owner[new]!r} both landed in "
                                f"cluster {new}")
                continue
            mapping[c] = new
    if problems:
        raise ReviewNeeded(
            f"{labelmap.path}: the clusters it names changed since it was reviewed ("
            + "; ".join(problems[:4]) + (" …" if len(problems) > 4 else "")
            + "); review clusters.csv and the label map's clusters, then run again")
    return Drift(mapping, moved)


def remapped(labelmap: LabelMap, drift: Drift) -> LabelMap:
    """The label map with every cluster id replaced by the one it maps to."""
    return replace(labelmap, labels=tuple(
        replace(lab, clusters=tuple(dict.fromkeys(drift.mapping.get(c, c)
                                                  for c in lab.clusters)))
        for lab in labelmap.labels))


def read_pin(path: Path, digest: str) -> dict[int, list[str]] | None:
    """The pinned cluster words of the map with ``digest``, or None."""
    if not path.exists():
        return None
    try:
        data: Any = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("labelmap") != digest:
        return None
    return {int(k): list(v) for k, v in data.get("clusters", {}).items()}


def pin_text(labelmap: LabelMap, digest: str, current: dict[int, list[str]]) -> str:
    """``labelmap.pin.json``: the words of every cluster the map names, as now."""
    ids = sorted({c for lab in labelmap.labels for c in lab.clusters})
    return json.dumps({"labelmap": digest,
                       "clusters": {str(c): sorted(current.get(c, [])) for c in ids}},
                      ensure_ascii=False, indent=1, sort_keys=True) + "\n"
