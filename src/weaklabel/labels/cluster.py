"""The cluster stage: KMeans over word vectors, and the label-map draft a person edits.

Only the ``top_words`` most frequent words are clustered (rare words have noisy vectors
and would only make clusters harder to read). Vectors are L2-normalised, so KMeans'
Euclidean distance ranks like cosine similarity.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.config import ClusterConfig, Config, as_dict
from weaklabel.contracts import WORD_CLUSTERS
from weaklabel.errors import UsageError, WeaklabelError
from weaklabel.stage import StageReport, Summary
from weaklabel.workspace import Workspace, atomic_write_text

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)
TOP_SHOWN = 12


@dataclass
class Clustering:
    """Result of :func:`fit_clusters`."""

    words: pd.DataFrame  # WORD_CLUSTERS
    centroids: np.ndarray
    k: int
    scores: list[dict[str, float]]  # per K tried: k, inertia, silhouette


def parse_k_range(text: str) -> tuple[int, int]:
    """``"8:40"`` → (8, 40); a clear error otherwise."""
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise UsageError(f"--k-range {text!r} must look like A:B, e.g. 10:40") from None
    if not 2 <= a <= b:
        raise UsageError(f"--k-range {text!r} needs 2 <= A <= B")
    return a, b


def fit_clusters(
    words: Sequence[str], vectors: np.ndarray, counts: Sequence[int], *, k: int | None = None,
    k_range: tuple[int, int] | None = None, seed: int = 42, n_init: int = 4,
) -> Clustering:
    """KMeans on L2-normalised vectors; with ``k_range`` pick K by silhouette.

    Returns per-word cluster ids, each word's cosine similarity to its centroid, and the
    inertia/silhouette of every K tried.
    """
    import numpy as np
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    candidates = list(range(k_range[0], k_range[1] + 1)) if k_range else [k or 8]
    if min(candidates) >= n:
        raise WeaklabelError(
            f"cannot make {min(candidates)} clusters from {n} words; lower --k or give more posts"
        )
    if max(candidates) >= n:
        log.warning("--k-range %d:%d: only %d words to cluster, so K is tried up to %d",
                    candidates[0], candidates[-1], n, n - 1)
    candidates = [c for c in candidates if c < n]
    best: tuple[float, Any, int] | None = None
    scores = []
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, 5000), replace=False)
    for kk in candidates:
        km = KMeans(n_clusters=kk, random_state=seed, n_init=n_init).fit(x)
        sil = float(silhouette_score(x[sample], km.labels_[sample], metric="euclidean")) \
            if len(set(km.labels_[sample])) > 1 else -1.0
        scores.append({"k": kk, "inertia": float(km.inertia_), "silhouette": sil})
        log.debug("k=%d inertia=%.1f silhouette=%.4f", kk, km.inertia_, sil)
        if best is None or sil > best[0]:
            best = (sil, km, kk)
    assert best is not None
    _, km, kbest = best
    centroids = km.cluster_centers_ / np.maximum(
        np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True), 1e-12)
    labels = km.labels_.astype(int)
    sims = np.einsum("ij,ij->i", x, centroids[labels])
    df = pd.DataFrame({"word": list(words), "cluster": labels, "count": list(counts),
                       "similarity": sims.astype(float)})
    df["count"] = df["count"].astype(int)
    return Clustering(words=df, centroids=centroids, k=kbest, scores=scores)


def summarize_clusters(words: pd.DataFrame, top: int = TOP_SHOWN) -> pd.DataFrame:
    """One row per cluster: size, top words by frequency and by closeness to the centroid."""
    import pandas as pd

    rows = []
    for cid, g in words.groupby("cluster", sort=True):
        by_freq = g.sort_values(["count", "word"], ascending=[False, True])["word"].head(top)
        by_sim = g.sort_values(["similarity", "word"], ascending=[False, True])["word"].head(top)
        rows.append({"cluster": int(cid), "size": len(g), "count": int(g["count"].sum()),
                     "top_words": " ".join(by_freq), "central_words": " ".join(by_sim)})
    return pd.DataFrame(rows)


def assign_clusters(
    words: pd.DataFrame, seed_keywords: Mapping[str, Sequence[str]]
) -> dict[int, str]:
    """Pre-assign clusters to labels from a person's seed keywords.

    A cluster goes to a label when it holds that label's keywords and no other label's
    (most keyword occurrences wins; a tie leaves the cluster for the person to decide).
    Clusters without any keyword stay unassigned: whole clusters pull in unrelated
    words, so only clusters the keywords vouch for are proposed.
    """
    where = dict(zip(words["word"], words["cluster"], strict=True))
    count = dict(zip(words["word"], words["count"], strict=True))
    votes: dict[int, dict[str, int]] = {}
    for label, kws in seed_keywords.items():
        for kw in kws:
            if kw in where:
                votes.setdefault(int(where[kw]), {}).setdefault(label, 0)
                votes[int(where[kw])][label] += int(count[kw])
    out = {}
    for cid, v in votes.items():
        ranked = sorted(v.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(ranked) == 1 or ranked[0][1] >= 2 * ranked[1][1]:
            out[cid] = ranked[0][0]
    return out


def _yaml_str(s: str) -> str:
    import json

    return json.dumps(s, ensure_ascii=False)


def draft_labelmap(
    summary: pd.DataFrame, seed_keywords: Mapping[str, Sequence[str]] | None = None,
    assigned: Mapping[int, str] | None = None, *, background: str | None = "other",
    cluster_words: Mapping[int, Sequence[str]] | None = None,
) -> str:
    """YAML text of the label-map draft: every cluster with its top words as comments,
    and, given ``cluster_words``, every cluster's words as data (``cluster_words:``, so
    a map saved from the draft knows what its cluster ids meant: drift.py).

    With seed keywords the draft is a valid label map as it stands; without, it lists
    the clusters under a single placeholder label for a person to split.
    """
    assigned = dict(assigned or {})
    top = {int(r.cluster): r.top_words for r in summary.itertuples()}
    lines = ["# weaklabel label map draft: assign cluster ids to labels, then save it as",
             "# labelmap.yaml (this draft is rewritten by every `weaklabel cluster`).",
             "version: 1", "labels:"]
    if seed_keywords:
        from weaklabel.labels.labelmap import label_id_from_name, label_id_problem

        taken: set[str] = set()
        for label, kws in seed_keywords.items():
            mine = sorted(c for c, lab in assigned.items() if lab == label)
            # the keywords file names labels as a person writes them (원피스/스커트);
            # the id must also name a folder, so an unsafe name gets a derived id
            lid = label if label_id_problem(label) is None and label.casefold() not in \
                {t.casefold() for t in taken} else label_id_from_name(label, taken)
            taken.add(lid)
            lines.append(f"  {_yaml_str(lid)}:")
            lines.append(f"    name: {_yaml_str(label)}")
            if label == background:
                lines.append("    background: true")
            lines.append(f"    clusters: [{', '.join(map(str, mine))}]")
            for c in mine:
                lines.append(f"    # {c}: {top[c]}")
            lines.append(f"    keywords: [{', '.join(_yaml_str(k) for k in kws)}]")
            lines.append("    exclude: []")
    else:
        lines += ["  label_a:", "    name: label_a", "    clusters: []",
                  "    keywords: [replace_me]"]
    rest = [c for c in sorted(top) if c not in assigned]
    lines.append("# unassigned clusters (add an id to a label's clusters to use it):")
    for c in rest:
        lines.append(f"#   {c}: {top[c]}")
    if cluster_words:
        lines += ["# every cluster's words in this clustering: keep them in your map, so a",
                  "# run clustered differently still finds what each id meant",
                  "cluster_words:"]
        lines += [f"  {c}: [{', '.join(_yaml_str(w) for w in cluster_words[c])}]"
                  for c in sorted(cluster_words)]
    return "\n".join(lines) + "\n"


def load_seed_keywords(path: Path) -> dict[str, list[str]]:
    """Read ``label: [keywords]`` YAML; errors name the line."""
    from weaklabel.labels.labelmap import _words
    from weaklabel.yamlio import LineDict, load_yaml

    data = load_yaml(path)
    if not isinstance(data, LineDict) or not data:
        raise WeaklabelError(f"{path}: seed keywords must map each label to a list of words")
    out = {}
    for label, kws in data.items():
        words = _words(kws, f"{path}:{data.key_lines[label]}")
        if not words:
            raise WeaklabelError(f"{path}:{data.key_lines[label]}: label {label!r} has no keywords")
        out[str(label)] = list(words)
    return out


@dataclass(frozen=True)
class KScore:
    """One K tried: KMeans' inertia and the silhouette of a sample of words."""

    k: int
    inertia: float
    silhouette: float


@dataclass(frozen=True)
class ClusterSummary(Summary):
    """What ``cluster`` made: K, the words clustered, every K tried, and how many
    clusters the seed keywords pre-assigned to a label."""

    k: int
    words: int
    scores: tuple[KScore, ...] = ()
    assigned: int = 0

    def text(self) -> str:
        return f"{self.k} clusters of {self.words} words, {self.assigned} pre-assigned"


CLUSTER_OUTPUTS = ("word_clusters.parquet", "clusters.csv", "labelmap.draft.yaml")


def run_cluster(ws: Workspace, cfg: Config, *, force: bool = False,
                progress: bool = True) -> StageReport[ClusterSummary]:
    """Cluster the vocabulary; write ``word_clusters.parquet``, ``clusters.csv`` and the
    label-map draft (clusters pre-assigned by the ``seed_keywords`` file, if set).

    Raises:
        MissingArtifactError: no vectors (run ``weaklabel embed``).
        WeaklabelError: a bad seed-keywords file, too few words for K.
    """
    from weaklabel.text.embed import read_vocab_counts

    vec_path = ws.require("vectors.kv")
    counts = read_vocab_counts(ws.require("vocab.csv"))
    kw = load_seed_keywords(Path(cfg.seed_keywords)) if cfg.seed_keywords else None
    # draft 2: label ids derived from unsafe names (the names kept in name:); 3: the
    # clusters' words recorded as cluster_words
    params = {"cluster": as_dict(cfg.cluster), "seed_keywords": kw, "draft": 3}
    with ws.stage("cluster", outputs=CLUSTER_OUTPUTS, params=params,
                  inputs={"vectors.kv": vec_path}, summary=ClusterSummary,
                  force=force) as st:
        if st.todo:
            _not_the_draft(ws, cfg)
            summary = _cluster_words(ws, cfg.cluster, vec_path, counts, kw)
            st.done(summary, rows=dict.fromkeys(CLUSTER_OUTPUTS, summary.k))
    return st.report


def _not_the_draft(ws: Workspace, cfg: Config) -> None:
    """Refuse to rewrite the draft when the config's label map is the draft itself: the
    person's edits in it would be lost to the next clustering.

    Raises:
        WeaklabelError: naming the file and the fix.
    """
    import os

    draft = ws.path("labelmap.draft.yaml")
    if cfg.labelmap and draft.exists() and os.path.exists(cfg.labelmap) \
            and os.path.samefile(cfg.labelmap, draft):
        raise WeaklabelError(
            f"the label map {cfg.labelmap} is the draft `weaklabel cluster` rewrites; "
            f"your edits would be lost: copy it to labelmap.yaml beside the config and set "
            "labelmap: to that file")


def _cluster_words(ws: Workspace, ccfg: ClusterConfig, vec_path: Path,
                   counts: Mapping[str, int], kw: dict[str, list[str]] | None
                   ) -> ClusterSummary:
    import numpy as np

    from weaklabel.text.embed import load_vectors

    kv = load_vectors(vec_path)
    words = sorted(kv.index_to_key, key=lambda w: (-counts.get(w, 0), w))[: ccfg.top_words]
    if kw:  # a person's keywords are always clustered, however rare
        words += [w for ws_ in kw.values() for w in ws_ if w in kv.key_to_index
                  and w not in set(words)]
    vectors = np.stack([kv[w] for w in words])
    k_range = parse_k_range(ccfg.k_range) if ccfg.k_range else None
    cl = fit_clusters(words, vectors, [counts.get(w, 0) for w in words], k=ccfg.k,
                      k_range=k_range, seed=ccfg.seed, n_init=ccfg.n_init)
    table = summarize_clusters(cl.words)
    assigned = assign_clusters(cl.words, kw) if kw else {}
    if kw:
        table["label"] = table["cluster"].map(lambda c: assigned.get(int(c), ""))
    ws.write("word_clusters.parquet", cl.words, WORD_CLUSTERS)
    atomic_write_text(ws.path("clusters.csv"), table.to_csv(index=False))
    bg = "other" if kw and "other" in kw else None
    ranked = cl.words.sort_values(["cluster", "count", "word"], ascending=[True, False, True])
    members = {int(c): g["word"].tolist() for c, g in ranked.groupby("cluster")}
    atomic_write_text(ws.path("labelmap.draft.yaml"),
                      draft_labelmap(table, kw, assigned, background=bg,
                                     cluster_words=members))
    return ClusterSummary(k=cl.k, words=len(words),
                          scores=tuple(KScore(int(s["k"]), s["inertia"], s["silhouette"])
                                       for s in cl.scores),
                          assigned=len(assigned))
