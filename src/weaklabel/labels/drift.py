"""A reviewed label map keeps its meaning when the corpus grows and is re-clustered.

Cluster ids are positions in one KMeans run: add a day of posts (or change the user
dictionary) and Word2Vec and KMeans run again, and cluster 20 is now some other set of
words. So the first time a label map is used, the words of every cluster it names are
pinned beside the workspace (``labelmap.pin.json``: the map's digest and, per cluster id
the map names, that cluster's words). The pin is the meaning: later runs with the same
map label with the pinned words, not with whatever the new KMeans put under those ids.

* **Pinned words keep their id.** Every pinned word still in the vocabulary (the words
  clustered now) stays a word of its pinned cluster id, wherever the new KMeans put it:
  the seeds of earlier posts stay what the person reviewed.
* **A new word joins by majority.** A word in no pinned cluster (and not one the map's
  ``cluster_words`` records under a cluster no label names: the person saw it and left
  it out) joins labelled cluster id
  ``c`` when at least ``join_share`` (half) of the words of its new KMeans cluster are
  ``c``'s pinned words: its cluster is mostly made of what the person put under ``c``.
  Counting the whole new cluster, not only its pinned words, keeps one pinned word from
  pulling a cluster of strangers into a label. Otherwise the word stays unlabelled.
* **Unlabelled clusters** (ids the map does not name) are the new KMeans clusters, as
  before: nobody reviewed them.
* **Stop only when the meaning is gone.** When more than ``lost_share`` (half) of a
  labelled cluster's pinned words are no longer in the vocabulary (a user-dictionary
  change merged or split them, the corpus lost them), the run stops with
  :class:`~weaklabel.errors.ReviewNeeded` (exit 3) naming the label map, the label, the
  cluster and the words to review.

Drift (words joined, words lost per label) is reported by :func:`drift_lines`.

**The map's own words.** The draft ``weaklabel cluster`` writes records every cluster's
words (``cluster_words:``), and a map saved from it keeps them. So a map used for the
first time in a workspace clustered differently from the one it was reviewed against
(another ``--k``, a ``--k-range`` that picks another K, another seed, a teammate's fresh
clone, a user-dictionary change before the first run) is not pinned to whatever
clusters carry its ids now: :func:`first_pin` compares each labelled cluster's recorded
words with the current clustering. When every labelled id still holds at least half of
its recorded words, the map meets the clustering it was reviewed on, and the current
words are pinned as before. Otherwise the recorded words are the pin, exactly as a
workspace's pin is (one rule, :func:`pinned_clusters`): they keep their label wherever
KMeans put them, new words join by majority, and the run stops only when most of a
cluster's recorded words left the vocabulary. A map without ``cluster_words`` (an old
map) is pinned to the current clusters, with a warning that it cannot be checked.

**Renewal:** the pin belongs to one version of the map (its content digest). Editing
the map gives a new digest, which means a person looked at the current clusters: the
next run pins the current clusters anew. An unchanged map keeps its pin however many
days of posts are added; joined words are not written into the pin, so the meaning never
creeps away from what was reviewed.

The functions here are pure: word lists in, word lists out.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weaklabel.errors import ReviewNeeded
from weaklabel.labels.labelmap import LabelMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drift:
    """The cluster words to label with, and per labelled cluster id what changed."""

    clusters: dict[int, list[str]]
    joined: dict[int, list[str]]
    lost: dict[int, list[str]]


def pinned_clusters(labelmap: LabelMap, pinned: dict[int, list[str]],
                    current: dict[int, list[str]], *, join_share: float = 0.5,
                    lost_share: float = 0.5) -> Drift:
    """The words of every cluster id the map names, carried over a re-cluster.

    ``pinned``: cluster id → words when the map was reviewed; ``current``: cluster id →
    words of the new KMeans run. Returns the clusters to label with: ``current`` with
    every labelled id replaced by its pinned words still in the vocabulary plus the new
    words that join it (module docstring), and the words each labelled id gained or lost.

    Raises:
        ReviewNeeded: most of a labelled cluster's pinned words left the vocabulary.
    """
    labelled = sorted({c for lab in labelmap.labels for c in lab.clusters if c in pinned})
    vocab = {w for ws in current.values() for w in ws}
    owner = {w: c for c in labelled for w in pinned[c]}
    # a word the map records under a cluster no label names was seen and left out by the
    # person: it never joins a label
    left_out = {w for c, ws in labelmap.cluster_words.items() for w in ws} - set(owner)
    problems: list[str] = []
    for lab in labelmap.labels:
        for c in lab.clusters:
            old = pinned.get(c, [])
            gone = sorted(w for w in old if w not in vocab)
            if old and len(gone) > lost_share * len(old):
                problems.append(
                    f"{lab.id!r} cluster {c}: {len(gone)} of its {len(old)} reviewed words "
                    f"are no longer in the vocabulary ({', '.join(gone[:5])}"
                    + (" …" if len(gone) > 5 else "") + ")")
    if problems:
        raise ReviewNeeded(
            f"{labelmap.path}: the clusters it names changed since it was reviewed ("
            + "; ".join(problems[:4]) + (" …" if len(problems) > 4 else "")
            + "); a user-dictionary change may have merged or split them: review "
            "clusters.csv and the label map's clusters, then run again with the draft's "
            "cluster_words (an edited map is checked anew)")
    joined: dict[int, list[str]] = {c: [] for c in labelled}
    for _, words in sorted(current.items()):
        hits = Counter(owner[w] for w in words if w in owner)
        if not hits:
            continue
        c, n = min(hits.items(), key=lambda kv: (-kv[1], kv[0]))
        if n >= join_share * len(words):
            joined[c].extend(w for w in words if w not in owner and w not in left_out)
    out = {k: list(ws) for k, ws in current.items()}
    for c in labelled:
        out[c] = sorted(w for w in pinned[c] if w in vocab) + sorted(joined[c])
    lost = {c: sorted(w for w in pinned[c] if w not in vocab) for c in labelled}
    return Drift(out, {c: sorted(v) for c, v in joined.items()}, lost)


def first_pin(labelmap: LabelMap, current: dict[int, list[str]], *, same_share: float = 0.5
              ) -> tuple[dict[int, list[str]] | None, list[str]]:
    """What a map's first use in a workspace pins: None when the current clusters are the
    ones the map was reviewed on (or it records no words: then a warning), else the map's
    recorded words of every cluster it names, and one line per label whose clusters were
    found under other ids (module docstring).

    ``same_share``: the share of a cluster's recorded words its id must still hold.
    """
    named = sorted({c for lab in labelmap.labels for c in lab.clusters})
    recorded = {c: list(labelmap.cluster_words[c]) for c in named
                if labelmap.cluster_words.get(c)}
    unchecked = [c for c in named if c not in recorded]
    if unchecked:
        log.warning("%s: %s so it cannot be checked against this clustering (a cluster id "
                    "means its cluster only in the run the map was reviewed on); copy that "
                    "run's cluster_words from its labelmap.draft.yaml into the map",
                    labelmap.path, "records no cluster_words," if not recorded else
                    f"clusters {', '.join(map(str, unchecked))} have no cluster_words entry,")
    if all(len(set(ws) & set(current.get(c, ()))) >= same_share * len(ws)
           for c, ws in recorded.items()):
        return None, []
    where = {w: c for c, ws in current.items() for w in ws}
    lines = []
    for lab in labelmap.labels:
        moved = []
        for c in lab.clusters:
            hits = Counter(where[w] for w in recorded.get(c, ()) if w in where)
            now = min(hits.items(), key=lambda kv: (-kv[1], kv[0]))[0] if hits else None
            if c in recorded and now != c:
                moved.append(f"{c} → {'gone' if now is None else now}")
        if moved:
            lines.append(f"{lab.id}: reviewed on another clustering, its clusters found by "
                         f"their recorded words ({', '.join(moved)})")
    pin = {c: sorted(current.get(c, [])) for c in unchecked}
    pin.update(recorded)
    return pin, lines


def drift_lines(labelmap: LabelMap, drift: Drift) -> list[str]:
    """One line per label whose clusters gained or lost words since review."""
    out = []
    for lab in labelmap.labels:
        joined = sorted({w for c in lab.clusters for w in drift.joined.get(c, [])})
        lost = sorted({w for c in lab.clusters for w in drift.lost.get(c, [])})
        if joined or lost:
            out.append(f"{lab.id}: {len(joined)} new word(s) joined"
                       + (f" ({_few(joined)})" if joined else "")
                       + f", {len(lost)} reviewed word(s) lost"
                       + (f" ({_few(lost)})" if lost else ""))
    return out


def drift_digest(lines: tuple[str, ...] | list[str], where: str = "") -> str:
    """Drift lines for one line of output: all of up to three, else two and a count of
    the rest (a map reviewed on another clustering can move every label), and
    ``where`` the rest can be read.

    Example:
        >>> drift_digest(["a: 1", "b: 2", "c: 3", "d: 4"], "meta.json")
        'a: 1; b: 2; … 2 more label(s), all in meta.json'
    """
    if len(lines) <= 3:
        return "; ".join(lines)
    return ("; ".join(lines[:2]) + f"; … {len(lines) - 2} more label(s)"
            + (f", all in {where}" if where else ""))


def _few(words: list[str], n: int = 5) -> str:
    return ", ".join(words[:n]) + (" …" if len(words) > n else "")


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
    """``labelmap.pin.json``: the words of every cluster the map names, as now (or, for a
    map reviewed on another clustering, as it records them: :func:`first_pin`)."""
    ids = sorted({c for lab in labelmap.labels for c in lab.clusters})
    return json.dumps({"labelmap": digest,
                       "clusters": {str(c): sorted(current.get(c, [])) for c in ids}},
                      ensure_ascii=False, indent=1, sort_keys=True) + "\n"
