"""``weaklabel sample``: the most engaging images of each label, after the hygiene filters.

The labelled images pass, in order, through five filters, and the images left after each
one are counted per label (the *funnel*, so a person sees where images were lost):

1. **labelled**: images with a label (not :data:`~weaklabel.contracts.ABSTAIN`). An image
   shared by two posts counts once, under its majority label (ties: the higher
   confidence, then the label id) and the more engaging of those posts.
2. **after purge**: only images that ``purge.csv`` lists as ``ok`` stay (a file purge
   never saw, such as one behind a symlinked folder, is dropped).
3. **after dedup**: one copy per exact or near duplicate group of ``duplicates.csv``.
   dedup knows no labels; the choice is made here (:func:`drop_duplicates`): the group
   takes the label most of its labelled images carry, and the copy dedup kept when it
   carries that label, else the most engaging one that does. Groups whose images carry
   different labels are listed in ``label_conflicts.csv``.
4. **after confidence**: images whose label confidence is below ``min_confidence``.
5. **after per post**: at most ``per_post`` images of one post.

Then :func:`select_top` keeps the top ``N`` per label by engagement
(``score = likes + comment_weight * comments``, a missing count is 0), ties broken by
confidence (higher first), then image path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.contracts import ABSTAIN, IMAGE_LABELS
from weaklabel.dataset.contracts import FUNNEL_STEPS, LABEL_CONFLICTS, SAMPLE, SAMPLE_FUNNEL
from weaklabel.errors import WeaklabelError
from weaklabel.stage import StageReport, Summary
from weaklabel.tables import format_table
from weaklabel.workspace import Workspace, atomic_path, file_digest

if TYPE_CHECKING:
    import pandas as pd

    from weaklabel.config import Config

log = logging.getLogger(__name__)

TOTAL = "(total)"
"""The label of the funnel's last row: the sum over labels."""

ORDER = (["label", "score", "confidence", "image"], [True, False, False, True])
"""Sort columns and directions of the engagement order (the tie-breaks included)."""


# --- pure functions ------------------------------------------------------------------------


def engagement(df: pd.DataFrame, *, comment_weight: float) -> pd.Series:
    """``likes + comment_weight * comments`` per row; a missing count counts as 0."""
    likes = df["likes"].astype("Float64").fillna(0)
    comments = df["comments"].astype("Float64").fillna(0)
    return (likes + comment_weight * comments).astype(float)


def resolve_images(labels: pd.DataFrame, *, comment_weight: float) -> pd.DataFrame:
    """One row per labelled image, with a ``score`` column.

    Abstained rows are dropped. An image with rows from several posts gets the label
    most of its rows carry (ties: higher best confidence, then label id) and the row of
    that label with the highest score (then confidence, then post id).
    """
    lab = labels[labels["label"] != ABSTAIN]
    lab = lab.assign(score=engagement(lab, comment_weight=comment_weight),
                     confidence=lab["confidence"].astype(float))
    if lab["image"].duplicated().any():
        votes = (lab.groupby(["image", "label"], sort=False)
                 .agg(n=("label", "size"), c=("confidence", "max")).reset_index())
        votes = votes.sort_values(["image", "n", "c", "label"],
                                  ascending=[True, False, False, True], kind="mergesort")
        winners = votes.drop_duplicates("image")[["image", "label"]]
        lab = lab.merge(winners, on=["image", "label"])
        lab = lab.sort_values(["image", "score", "confidence", "post_id"],
                              ascending=[True, False, False, True], kind="mergesort")
        lab = lab.drop_duplicates("image")
    return lab.reset_index(drop=True)


def drop_corrupt(df: pd.DataFrame, purge: pd.DataFrame | None) -> pd.DataFrame:
    """Rows whose image ``purge.csv`` lists as ``ok``; every other row is dropped.

    An allow list, not a block list: a path purge never saw (a missing file, one behind
    a symlinked folder that may leave the image root) is not an image of the data set.
    ``purge.csv`` writes undecodable name bytes as ``\\xNN``; images are compared in
    that form.
    """
    if purge is None:
        return df
    from weaklabel.containment import display_path

    good = set(purge.loc[purge["status"] == "ok", "path"])
    keep = df["image"].isin(good)
    rest = ~keep
    if rest.any():  # only names with undecodable bytes differ in the \xNN form
        keep[rest] = df.loc[rest, "image"].map(lambda i: display_path(str(i)) in good)
    return df[keep.astype(bool)]


def unseen_images_note(df: pd.DataFrame, purge: pd.DataFrame) -> list[str]:
    """A note when labelled images are missing from ``purge.csv`` altogether (no such
    file under the image root: a wrong root, a path the posts spell in another case),
    so that they are not lost among the corrupt ones in the funnel's purge column."""
    from weaklabel.containment import display_path

    seen = set(purge["path"])
    unseen = sorted({str(i) for i in df["image"]
                     if i not in seen and display_path(str(i)) not in seen})
    if not unseen:
        return []
    first = display_path(unseen[0])
    note = (f"{len(unseen)} labelled image(s) are not in purge.csv (no such file under "
            f"the image root, or one reached through a symlink), e.g. {first!r}; check "
            "posts.image_root and the posts' image paths")
    by_case = {p.casefold(): p for p in sorted(seen)}
    other = next((by_case[d.casefold()] for d in map(display_path, unseen)
                  if d.casefold() in by_case), None)
    if other is not None:
        note += f" (the root has {other!r}: paths differ only in case)"
    return [note]


def drop_duplicates(df: pd.DataFrame, duplicates: pd.DataFrame | None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per duplicate group, chosen knowing the labels; and the label conflicts.

    A group takes the label most of its images carry (ties: the higher best confidence,
    then the label id). Its row is the file dedup kept when that file carries the label,
    else the best image with the label in the engagement order (score, confidence, image
    path). Images in no group pass unchanged.

    Returns:
        The rows left, and the rows of every group whose images carry two or more labels
        (:data:`~weaklabel.dataset.contracts.LABEL_CONFLICTS` columns, sorted).
    """
    import pandas as pd

    none = pd.DataFrame({c: pd.Series(dtype=object) for c in LABEL_CONFLICTS.names})
    if duplicates is None or not len(duplicates) or not len(df):
        return df, none
    group = group_map(duplicates)
    kept = set(duplicates["kept"])
    g = df["image"].map(group)
    grouped = df[g.notna()].assign(_g=g[g.notna()].astype(int))
    votes = (grouped.groupby(["_g", "label"], sort=False)
             .agg(n=("label", "size"), c=("confidence", "max")).reset_index()
             .sort_values(["_g", "n", "c", "label"], ascending=[True, False, False, True],
                          kind="mergesort"))
    winner = dict(zip(votes.drop_duplicates("_g")["_g"], votes.drop_duplicates("_g")["label"],
                      strict=True))
    labels_per_group = votes.groupby("_g")["label"].size()
    clash = set(labels_per_group[labels_per_group > 1].index)
    cand = grouped[grouped["_g"].map(winner) == grouped["label"]]
    cand = cand.assign(_k=~cand["image"].isin(kept))
    cand = cand.sort_values(["_g", "_k", "score", "confidence", "image"],
                            ascending=[True, True, False, False, True], kind="mergesort")
    best = cand.drop_duplicates("_g").drop(columns=["_g", "_k"])
    conflicts = (grouped[grouped["_g"].isin(clash)].rename(columns={"_g": "group"})
                 .sort_values(["group", "image", "post_id"], kind="mergesort"))
    out = pd.concat([df[g.isna()], best]).sort_index()
    return out, conflicts[LABEL_CONFLICTS.names].reset_index(drop=True)


def group_map(duplicates: pd.DataFrame) -> dict[str, int]:
    """Image path → duplicate group id, for kept files and duplicates alike."""
    out: dict[str, int] = {}
    for gid, k, d in zip(duplicates["group"], duplicates["kept"], duplicates["duplicate"],
                         strict=True):
        out[str(k)] = int(gid)
        out[str(d)] = int(gid)
    return out


def limit_per_post(df: pd.DataFrame, per_post: int) -> pd.DataFrame:
    """At most ``per_post`` images per (label, post), best first; ``0`` = no limit."""
    if per_post <= 0 or not len(df):
        return df
    cols, asc = ORDER
    d = df.sort_values(cols, ascending=asc, kind="mergesort")
    return d[d.groupby(["label", "post_id"], sort=False).cumcount() < per_post]


def label_caps(
    available: Mapping[str, int],
    *,
    per_label: int,
    quotas: Mapping[str, int] | None = None,
    balance: bool = False,
) -> dict[str, int]:
    """How many images each label may keep.

    A label's quota (``quotas[label]``) replaces ``per_label``; with ``balance`` every
    label is capped at the smallest number any label with images can fill.

    Example:
        >>> label_caps({"a": 10, "b": 3}, per_label=5, balance=True)
        {'a': 3, 'b': 3}
    """
    quotas = quotas or {}
    caps = {lab: int(quotas.get(lab, per_label)) for lab in available}
    if balance:
        fill = [min(caps[lab], n) for lab, n in available.items() if n > 0 and caps[lab] > 0]
        if fill:
            low = min(fill)
            caps = {lab: min(c, low) for lab, c in caps.items()}
    return caps


def select_top(
    df: pd.DataFrame,
    *,
    per_label: int,
    quotas: Mapping[str, int] | None = None,
    per_post: int = 1,
    balance: bool = False,
) -> pd.DataFrame:
    """The top images of each label by engagement.

    Args:
        df: one row per image with ``image``, ``post_id``, ``label``, ``confidence``,
            ``score`` (see :func:`resolve_images`).
        per_label: images per label (``quotas`` overrides it per label).
        quotas: label → images; 0 leaves a label out.
        per_post: at most this many images of one post (0: no limit).
        balance: cap every label at the smallest one (see :func:`label_caps`).

    Returns:
        The chosen rows with a ``rank`` column (1 = most engaging), sorted by label then
        rank. Order: score (higher first), confidence (higher first), image path.

    Example:
        >>> top = select_top(images, per_label=100, quotas={"nails": 20}, per_post=1)
    """
    cols, asc = ORDER
    d = limit_per_post(df, per_post).sort_values(cols, ascending=asc, kind="mergesort")
    avail = d["label"].value_counts().to_dict()
    caps = label_caps(avail, per_label=per_label, quotas=quotas, balance=balance)
    rank = d.groupby("label", sort=False).cumcount() + 1
    cap = d["label"].map(caps).fillna(0).astype(int)
    out = d.assign(rank=rank.astype("int64"))[rank <= cap]
    return out.reset_index(drop=True)


def check_quotas(quotas: Mapping[str, int], valid: Iterable[str]) -> None:
    """Raise a one-line :class:`WeaklabelError` for an unknown label or a negative quota."""
    valid = list(valid)
    for lab, n in quotas.items():
        if lab not in valid:
            raise WeaklabelError(
                f"quota for unknown label {lab!r}; valid labels: {', '.join(valid) or '(none)'}"
            )
        if int(n) < 0:
            raise WeaklabelError(f"quota for {lab!r} is {n}; use a whole number >= 0")


@dataclass
class SampleResult:
    """The sample and the funnel of :func:`sample_images`."""

    sample: pd.DataFrame
    funnel: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    conflicts: pd.DataFrame | None = None
    """Duplicate groups whose images carry different labels (``LABEL_CONFLICTS``)."""
    warnings: list[str] = field(default_factory=list)
    """Notes that say images were lost unseen (also in ``notes``): logged as warnings."""


def sample_images(
    labels: pd.DataFrame,
    *,
    purge: pd.DataFrame | None = None,
    duplicates: pd.DataFrame | None = None,
    comment_weight: float = 2.0,
    min_confidence: float = 0.0,
    per_post: int = 1,
    per_label: int = 1000,
    quotas: Mapping[str, int] | None = None,
    balance: bool = False,
    label_order: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> SampleResult:
    """Every filter of the module docstring, then :func:`select_top`; no I/O.

    Args:
        labels: ``image_labels.parquet`` rows.
        purge: ``purge.csv`` rows (``path``, ``status``).
        duplicates: ``duplicates.csv`` rows (``group``, ``kept``, ``duplicate``).
        label_order: the label map's ids (funnel row order; labels without images get a
            row of zeros).
        exclude: labels left out altogether (the background label without
            ``include_background``).

    Returns:
        The sample (:data:`SAMPLE` columns) and the funnel (:data:`SAMPLE_FUNNEL`).
    """
    import pandas as pd

    notes: list[str] = []

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        return df[~df["label"].isin(list(exclude))]

    steps: dict[str, pd.DataFrame] = {}
    steps["labelled"] = keep(resolve_images(labels, comment_weight=comment_weight))
    steps["after_purge"] = drop_corrupt(steps["labelled"], purge)
    warn = unseen_images_note(steps["labelled"], purge) if purge is not None else []
    notes.extend(warn)
    steps["after_dedup"], conflicts = drop_duplicates(steps["after_purge"], duplicates)
    d = steps["after_dedup"]
    steps["after_confidence"] = d[d["confidence"] >= min_confidence]
    steps["after_per_post"] = limit_per_post(steps["after_confidence"], per_post)
    top = select_top(steps["after_per_post"], per_label=per_label, quotas=quotas,
                     per_post=per_post, balance=balance)
    steps["sampled"] = top

    vc = {s: steps[s]["label"].value_counts().to_dict() for s in FUNNEL_STEPS}
    seen = {str(lab) for counts in vc.values() for lab in counts}
    order = [lab for lab in label_order if lab not in exclude]
    extra = sorted(seen - set(order))
    if extra and label_order:
        notes.append(f"label(s) {', '.join(extra)} are not in the label map; "
                     "re-run weaklabel propagate")
    rows = []
    avail = vc["after_per_post"]
    caps = label_caps({lab: avail.get(lab, 0) for lab in order + extra},
                      per_label=per_label, quotas=quotas, balance=balance)
    for lab in order + extra:
        row: dict[str, Any] = {"label": lab}
        for s in FUNNEL_STEPS:
            row[s] = int(vc[s].get(lab, 0))
        row["quota"] = caps[lab]
        rows.append(row)
    total: dict[str, Any] = {"label": TOTAL}
    for s in [*FUNNEL_STEPS, "quota"]:
        total[s] = sum(r[s] for r in rows)
    funnel = pd.DataFrame([*rows, total], columns=SAMPLE_FUNNEL.names)
    for r in rows:
        if r["sampled"] < r["quota"]:
            notes.append(f"{r['label']}: {r['sampled']} of {r['quota']} wanted")
    return SampleResult(top[SAMPLE.names], funnel, notes, conflicts, warn)


def format_funnel(funnel: pd.DataFrame) -> str:
    """The funnel as an aligned text table (one line per label, the total last)."""
    heads = ["label", "labelled", "purge", "dedup", "confidence", "per-post", "sampled",
             "quota"]
    cols = ["label", *FUNNEL_STEPS, "quota"]
    body = [[str(v) for v in row] for row in funnel[cols].itertuples(index=False)]
    return format_table(heads, body)


# --- I/O -----------------------------------------------------------------------------------


from weaklabel.images.dedup import read_duplicates  # noqa: E402  re-export
from weaklabel.images.purge import read_purge  # noqa: E402  re-export


def load_labels_for_sampling(ws: Workspace) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """``image_labels.parquet`` (required), its content digest and notes."""
    labels = ws.read("image_labels.parquet", IMAGE_LABELS)
    return labels, {"image_labels.parquet": ws.input_digest("image_labels.parquet")}, []


@dataclass(frozen=True)
class FunnelRow:
    """One row of ``sample_funnel.csv``: a label's images after each filter."""

    label: str
    labelled: int
    after_purge: int
    after_dedup: int
    after_confidence: int
    after_per_post: int
    sampled: int
    quota: int


@dataclass(frozen=True)
class SampleSummary(Summary):
    """What ``sample`` chose: the images sampled, the funnel (one row per label, the
    total last), the duplicate groups whose images carry different labels, and notes
    (a missing hygiene report, a label short of its quota)."""

    sampled: int
    label_conflicts: int = 0
    funnel: tuple[FunnelRow, ...] = ()
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        return f"{self.sampled} images sampled, {self.label_conflicts} label conflict(s)"

    def funnel_frame(self) -> pd.DataFrame:
        """The funnel as ``sample_funnel.csv``'s table (for :func:`format_funnel`)."""
        import dataclasses

        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(r) for r in self.funnel],
                            columns=SAMPLE_FUNNEL.names)


SAMPLE_OUTPUTS = ("sample.parquet", "sample_funnel.csv", "label_conflicts.csv")


@dataclass
class _SampleInputs:
    """What :func:`run_sample` reads before it samples."""

    labels: pd.DataFrame
    inputs: dict[str, Path | str]
    notes: list[str]
    ids: list[str]
    exclude: list[str]
    purge: pd.DataFrame | None = None
    duplicates: pd.DataFrame | None = None


def _read_inputs(ws: Workspace, cfg: Config) -> _SampleInputs:
    """The labels (less reviewers' rejections), the label map and the hygiene reports."""
    from weaklabel.review.reviewed import drop_rejected, read_reviewed_images

    labels, digests, notes = load_labels_for_sampling(ws)
    inputs: dict[str, Path | str] = dict(digests)
    reviewed = read_reviewed_images(ws.root)  # a reviewer's "wrong label" leaves the sample
    if reviewed is not None:
        inputs["reviewed_images.parquet"] = ws.input_digest("reviewed_images.parquet")
        labels = drop_rejected(labels, reviewed)
    ids: list[str] = []
    background = None
    if cfg.labelmap is not None:
        from weaklabel.labels.labelmap import load_labelmap

        lm = load_labelmap(cfg.labelmap)
        ids, background = lm.ids, lm.background
        inputs["labelmap"] = file_digest(Path(cfg.labelmap))
    check_quotas(cfg.sample.quotas, ids or sorted(set(labels["label"]) - {ABSTAIN}))
    include_bg = cfg.sample.include_background
    exclude = [background] if background and not include_bg else []
    if not include_bg and background is None:
        notes.append("no background label known (give --labelmap); nothing left out")
    got = _SampleInputs(labels, inputs, notes, ids, exclude)
    for name in ("purge.csv", "duplicates.csv"):
        if ws.path(name).exists():
            inputs[name] = ws.input_digest(name)
    if "purge.csv" in inputs:
        got.purge = read_purge(ws.path("purge.csv"))
    else:
        notes.append("purge.csv not found: corrupt images are not filtered "
                     "(run weaklabel purge)")
    if "duplicates.csv" in inputs:
        got.duplicates = read_duplicates(ws.path("duplicates.csv"))
    else:
        notes.append("duplicates.csv not found: duplicates are not filtered "
                     "(run weaklabel dedup)")
    return got


def run_sample(ws: Workspace, cfg: Config, *, force: bool = False,
               progress: bool = True) -> StageReport[SampleSummary]:
    """Read the labels and the hygiene reports, sample, write ``sample.parquet``,
    ``sample_funnel.csv`` and ``label_conflicts.csv`` (with metas).

    Settings come from ``cfg.sample``; the label map (label order, background label,
    valid quota labels) from ``cfg.labelmap``.

    Raises:
        WeaklabelError: a missing ``image_labels.parquet`` (run ``weaklabel propagate``),
            an unknown label in a quota, a broken input file.
    """
    import pandas as pd

    from weaklabel.config import as_dict

    got = _read_inputs(ws, cfg)
    scfg = cfg.sample
    params = {"sample": as_dict(scfg), "exclude": got.exclude, "labels": got.ids}
    with ws.stage("sample", outputs=SAMPLE_OUTPUTS, params=params, inputs=got.inputs,
                  summary=SampleSummary, force=force) as st:
        if st.todo:
            res = sample_images(
                got.labels, purge=got.purge, duplicates=got.duplicates,
                comment_weight=scfg.comment_weight, min_confidence=scfg.min_confidence,
                per_post=scfg.per_post, per_label=scfg.per_label, quotas=scfg.quotas,
                balance=scfg.balance, label_order=got.ids, exclude=got.exclude)
            written = ws.write("sample.parquet", res.sample, SAMPLE)
            with atomic_path(ws.path("sample_funnel.csv")) as tmp:
                res.funnel.to_csv(tmp, index=False, lineterminator="\n")
            conflicts = res.conflicts if res.conflicts is not None else pd.DataFrame(
                columns=LABEL_CONFLICTS.names)
            with atomic_path(ws.path("label_conflicts.csv")) as tmp:
                conflicts.to_csv(tmp, index=False, lineterminator="\n")
            funnel = res.funnel.to_dict(orient="records")
            n_conflicts = int(conflicts["group"].nunique())
            notes = got.notes + res.notes
            for n in notes:
                log.log(logging.WARNING if n in res.warnings else logging.INFO, "%s", n)
            st.done(SampleSummary(sampled=len(written), label_conflicts=n_conflicts,
                                  funnel=tuple(FunnelRow(**r) for r in funnel),
                                  notes=tuple(notes)),
                    rows={"sample.parquet": len(written), "sample_funnel.csv": len(funnel),
                          "label_conflicts.csv": len(conflicts)},
                    meta={"funnel": funnel, "labels_table": "image_labels.parquet",
                          "label_conflicts": n_conflicts})
    return st.report
