"""The label map: a hand-edited YAML file that turns clusters and keywords into labels.

.. code-block:: yaml

    version: 1
    labels:
      lips:
        name: 입술 화장          # display name (default: the id)
        clusters: [3, 17]        # cluster ids from clusters.csv
        keywords: [립스틱, 틴트]  # extra words
        exclude: [립밤]          # words never counted for this label
      other:
        name: 기타
        background: true         # absorbs non-target posts; optional in sampling
        clusters: [5, 9, 21]
    cluster_words:               # written by `weaklabel cluster`: keep it as it is
      3: [립스틱, 틴트, 입술]     # the words of every cluster when the map was reviewed
      17: [립글로스, 촉촉]

``cluster_words`` records what each cluster id meant when a person reviewed the map, so
the first run in a workspace clustered differently (another K, seed or user dictionary)
labels with those words, not with whatever KMeans put under the ids now (drift.py). A
map without it is still valid; it just cannot be checked.

Every validation error names the file, the line and the fix.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weaklabel.errors import WeaklabelError, closest
from weaklabel.text.normalize import fold
from weaklabel.yamlio import LineDict, load_yaml

log = logging.getLogger(__name__)

LABEL_KEYS = ("name", "clusters", "keywords", "exclude", "background")
TOP_KEYS = ("version", "labels", "cluster_words")
_UNSAFE = re.compile(r'[/\\<>:"|?*\x00-\x1f\x7f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}
_OURS = ("(none)", "(total)")
"""Row names of our own tables: abstained posts (the review's "none of the labels",
eval's confusion matrix) and the funnel's and data set's total row."""


def label_id_problem(lid: str) -> str | None:
    """Why ``lid`` cannot be a label id, or None when it can.

    A label id names a folder of the exported data set on every system, so it may not
    be empty, ``.`` or ``..``, hold ``/ \\ < > : " | ? *`` or control characters, start
    or end with a space or a dot, or be a reserved Windows device name (``con``, ``nul``,
    ``com1`` …), or ``(none)``/``(total)``, the rows of our own tables. Hangul, letters,
    digits and ``_ - ( ) &`` are all fine. This is the one rule for ids, wherever they
    come from.
    """
    if not lid or lid in (".", ".."):
        return "is empty" if not lid else "is a path component"
    bad = sorted(set(_UNSAFE.findall(lid)))
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"holds {shown}, which a folder name cannot"
    if lid != lid.strip() or lid.endswith(".") or lid.startswith("."):
        return "starts or ends with a space or a dot"
    if lid.split(".")[0].casefold() in _RESERVED:
        return "is a reserved device name on Windows"
    if lid.casefold() in _OURS:
        return "names weaklabel's own row of abstained posts or totals"
    return None


def check_label_id(lid: str, where: str) -> str:
    """``lid`` when it is a valid label id; else one-line error naming ``where``."""
    why = label_id_problem(lid)
    if why:
        raise WeaklabelError(
            f"{where}: label id {lid!r} {why}; use an id like {label_id_from_name(lid)!r} "
            f"and put the display name in name:, e.g. {label_id_from_name(lid)}: "
            f"{{name: {_display_example(lid)!r}}}")
    return lid


def _display_example(lid: str) -> str:
    """A display name to suggest for ``lid``: as written, but not one of weaklabel's own
    row names (``(none)``, ``(total)``), which would read as that row."""
    name = lid.strip()
    return name.strip("()") or name if name.startswith("(") and name.endswith(")") else name


def label_id_from_name(name: str, taken: set[str] | None = None) -> str:
    """A folder-safe label id from a display name: every unsafe character or run of
    spaces becomes ``_`` (``교통/건축/국토`` → ``교통_건축_국토``); ``_2``, ``_3`` … is
    appended while the id (ignoring case) is in ``taken``.

    Example:
        >>> label_id_from_name("IT/과학"), label_id_from_name("a b", {"a_b"})
        ('IT_과학', 'a_b_2')
    """
    base = re.sub(r"[\s_]+", "_", _UNSAFE.sub("_", unicodedata.normalize("NFC", name)))
    base = base.strip("_. ") or "label"
    if base.split(".")[0].casefold() in _RESERVED:
        base = f"{base}_"
    if base.casefold() in _OURS:
        base = base.strip("()")
    taken_cf = {t.casefold() for t in (taken or set())}
    out, i = base, 2
    while out.casefold() in taken_cf:
        out, i = f"{base}_{i}", i + 1
    return out


@dataclass(frozen=True)
class LabelSpec:
    """One label of the map."""

    id: str
    name: str
    clusters: tuple[int, ...] = ()
    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    background: bool = False
    line: int = 0


@dataclass(frozen=True)
class LabelMap:
    """Labels in file order; at most one background label."""

    labels: tuple[LabelSpec, ...]
    path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # cluster id → its words when the map was reviewed (``cluster_words:``); {} for an
    # old map that does not record them
    cluster_words: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        return [lab.id for lab in self.labels]

    def id_of(self) -> dict[str, str]:
        """Every id and display name → its id (a gold file may use either)."""
        out = {lab.name: lab.id for lab in self.labels}
        out.update({lab.id: lab.id for lab in self.labels})
        return out

    @property
    def background(self) -> str | None:
        return next((lab.id for lab in self.labels if lab.background), None)

    def get(self, label_id: str) -> LabelSpec:
        return next(lab for lab in self.labels if lab.id == label_id)


def _words(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise WeaklabelError(f"{where}: expected a list of words, e.g. [립스틱, 틴트]")
    out = []
    for w in value:
        if isinstance(w, bool) or w is None:
            raise WeaklabelError(
                f"{where}: YAML reads an unquoted no/yes/on/off/null as {w!r}, not a word; "
                "quote it, e.g. 'no'"
            )
        if isinstance(w, (list, dict)):
            # str() would turn [립스틱] into the word "['립스틱']", which never matches.
            raise WeaklabelError(
                f"{where}: expected a word, got a {'list' if isinstance(w, list) else 'mapping'}"
                f" ({w!r}); write the words as one flat list, e.g. [립스틱, 틴트]")
        text = unicodedata.normalize("NFC", str(w)).strip()
        if text:
            out.append(fold(text))  # tokens are folded alike: G70 and G70사진 match
    return tuple(dict.fromkeys(out))


def parse_labelmap(data: Any, path: str, *, known_clusters: set[int] | None = None) -> LabelMap:
    """Validate parsed YAML into a :class:`LabelMap`: the top level, then each label
    (:func:`_parse_label`), then what no label can check alone (:func:`_check_labels`).

    Raises:
        WeaklabelError: with ``path:line`` and the fix.
    """
    if not isinstance(data, LineDict):
        raise WeaklabelError(f"{path}: a label map is a mapping with 'version' and 'labels'")
    for key in data:
        if key not in TOP_KEYS:
            hint = closest(str(key), TOP_KEYS)
            raise WeaklabelError(
                f"{path}:{data.key_lines[key]}: unknown top-level key {key!r}"
                + (f"; did you mean {hint!r}?" if hint
                   else "; expected version, labels and cluster_words")
            )
    if data.get("version", 1) != 1:
        raise WeaklabelError(f"{path}:{data.key_lines.get('version', 1)}: version must be 1")
    labels = data.get("labels")
    if not isinstance(labels, LineDict) or not labels:
        line = data.key_lines.get("labels", 1)
        raise WeaklabelError(f"{path}:{line}: 'labels' must map label ids to their settings")
    recorded = _parse_cluster_words(data.get("cluster_words"),
                                    data.key_lines.get("cluster_words", 1), path) \
        if "cluster_words" in data else {}
    if known_clusters:  # a recorded cluster is known: its words say what it is
        known_clusters = set(known_clusters) | set(recorded)
    owner: dict[int, tuple[str, int]] = {}  # cluster id → (label, line) that claimed it
    specs = [_parse_label(str(lid), body, labels.key_lines[lid], path,
                          known_clusters=known_clusters, owner=owner)
             for lid, body in labels.items()]
    _check_labels(specs, path)
    return LabelMap(labels=tuple(specs), path=path, cluster_words=recorded)


def _parse_cluster_words(raw: Any, line: int, path: str) -> dict[int, tuple[str, ...]]:
    """``cluster_words:``: whole-number cluster ids → their words, no word under two ids."""
    if not isinstance(raw, LineDict):
        raise WeaklabelError(
            f"{path}:{line}: cluster_words must map cluster ids to their words, e.g. "
            "cluster_words: {3: [립스틱, 틴트]}; copy it from labelmap.draft.yaml")
    out: dict[int, tuple[str, ...]] = {}
    where: dict[str, int] = {}
    for c, words in raw.items():
        at = f"{path}:{raw.key_lines[c]}"
        if isinstance(c, bool) or not isinstance(c, int) or c < 0:
            fix = (f"write it unquoted: {c.strip()}:" if isinstance(c, str)
                   and c.strip().isascii() and c.strip().isdigit()
                   else "copy the ids from labelmap.draft.yaml")
            raise WeaklabelError(
                f"{at}: cluster_words key {c!r} is not a cluster id: a whole-number "
                f"cluster id from clusters.csv is expected (e.g. 3:); {fix}")
        out[c] = _words(words, at)
        for w in out[c]:
            if where.setdefault(w, c) != c:
                raise WeaklabelError(
                    f"{at}: word {w!r} is recorded under cluster {where[w]} and cluster "
                    f"{c}; a word belongs to one cluster: keep it under one")
    return out


def _parse_label(lid: str, body: Any, line: int, path: str, *,
                 known_clusters: set[int] | None,
                 owner: dict[int, tuple[str, int]]) -> LabelSpec:
    """One label's settings (name, clusters, keywords, exclude, background)."""
    check_label_id(lid, f"{path}:{line}")
    if body is None:
        body = LineDict()
        body.key_lines = {}
    if not isinstance(body, LineDict):
        raise WeaklabelError(
            f"{path}:{line}: label {lid!r} must be a mapping (name, clusters, keywords, "
            "exclude, background)"
        )
    for key in body:
        if key not in LABEL_KEYS:
            hint = closest(str(key), LABEL_KEYS)
            raise WeaklabelError(
                f"{path}:{body.key_lines[key]}: unknown key {key!r} in label {lid!r}"
                + (f"; did you mean {hint!r}?" if hint else f"; valid: {', '.join(LABEL_KEYS)}")
            )
    clusters = _parse_clusters(lid, body.get("clusters") or [],
                               body.key_lines.get("clusters", line), path,
                               known_clusters=known_clusters, owner=owner)
    bg = body.get("background", False)
    if not isinstance(bg, bool):
        raise WeaklabelError(
            f"{path}:{body.key_lines['background']}: background must be true or false"
        )
    name = body.get("name", lid)
    if isinstance(name, (list, dict)):
        raise WeaklabelError(
            f"{path}:{body.key_lines['name']}: name of {lid!r} must be text, got {name!r}; "
            f"e.g. name: 입술 화장")
    return LabelSpec(
        id=lid, name=str(name if name is not None else lid),
        clusters=tuple(dict.fromkeys(clusters)),
        keywords=_words(body.get("keywords"), f"{path}:{body.key_lines.get('keywords', line)}"),
        exclude=_words(body.get("exclude"), f"{path}:{body.key_lines.get('exclude', line)}"),
        background=bg, line=line,
    )


def _parse_clusters(lid: str, clusters_raw: Any, cl_line: int, path: str, *,
                    known_clusters: set[int] | None,
                    owner: dict[int, tuple[str, int]]) -> list[int]:
    """A label's cluster ids: whole numbers, existing, claimed by no other label."""
    if isinstance(clusters_raw, int) and not isinstance(clusters_raw, bool):
        clusters_raw = [clusters_raw]
    if not isinstance(clusters_raw, list):
        raise WeaklabelError(f"{path}:{cl_line}: clusters of {lid!r} must be a list of ids")
    clusters = []
    for c in clusters_raw:
        if isinstance(c, bool) or not isinstance(c, int):
            raise WeaklabelError(
                f"{path}:{cl_line}: cluster id {c!r} of {lid!r} is not a whole number"
            )
        if known_clusters is not None and c not in known_clusters:
            if not known_clusters:  # not "0..-1": say what is missing
                raise WeaklabelError(
                    f"{path}:{cl_line}: cluster {c} of {lid!r} does not exist: no "
                    "clusters yet; run `weaklabel cluster` first or remove the ids"
                )
            raise WeaklabelError(
                f"{path}:{cl_line}: cluster {c} of {lid!r} does not exist "
                f"(clusters.csv has 0..{max(known_clusters)}); fix the id or re-run "
                "weaklabel cluster"
            )
        if c in owner and owner[c][0] != lid:
            raise WeaklabelError(
                f"{path}:{cl_line}: cluster {c} is claimed by {lid!r} and by "
                f"{owner[c][0]!r} (line {owner[c][1]}); give it to one label"
            )
        owner[c] = (lid, cl_line)
        clusters.append(c)
    return clusters


def _check_labels(specs: list[LabelSpec], path: str) -> None:
    """What only the whole map shows: ids equal but for case, two labels of one name or
    a name that is another label's id, a word both kept and excluded, a keyword of two
    labels (a warning), two background labels, a label with nothing to match."""
    seen_ids: dict[str, LabelSpec] = {}
    for spec in specs:
        other = seen_ids.setdefault(spec.id.casefold(), spec)
        if other is not spec:
            raise WeaklabelError(
                f"{path}:{spec.line}: label {spec.id!r} differs from {other.id!r} (line "
                f"{other.line}) only by case; their folders would merge on macOS and Windows"
            )
    by_name: dict[str, LabelSpec] = {}
    ids = {spec.id: spec for spec in specs}
    for spec in specs:
        # a name stands for its label in review files: one name, one label
        other = by_name.setdefault(spec.name, spec)
        if other is not spec:
            raise WeaklabelError(
                f"{path}:{spec.line}: labels {other.id!r} (line {other.line}) and {spec.id!r} "
                f"are both named {spec.name!r}; give each label its own name")
        if spec.name in ids and ids[spec.name] is not spec:
            raise WeaklabelError(
                f"{path}:{spec.line}: label {spec.id!r} is named {spec.name!r}, the id of "
                f"label {spec.name!r} (line {ids[spec.name].line}); a name must not be "
                "another label's id")
        both = sorted(set(spec.keywords) & set(spec.exclude))
        if both:
            raise WeaklabelError(
                f"{path}:{spec.line}: label {spec.id!r} has {both[0]!r} both in keywords and "
                "in exclude; keep it in one of the two")
    keyword_of: dict[str, LabelSpec] = {}
    for spec in specs:
        for w in spec.keywords:
            first = keyword_of.setdefault(w, spec)
            if first is not spec:
                log.warning("%s:%d: keyword %r belongs to %r and %r (line %d): posts "
                            "matching it tie between them", path, spec.line, w, first.id,
                            spec.id, first.line)
    bgs = [s for s in specs if s.background]
    if len(bgs) > 1:
        raise WeaklabelError(
            f"{path}:{bgs[1].line}: labels {bgs[0].id!r} and {bgs[1].id!r} are both background; "
            "keep one"
        )
    for s in specs:
        if not s.clusters and not s.keywords:
            raise WeaklabelError(
                f"{path}:{s.line}: label {s.id!r} has no clusters and no keywords; "
                "give it at least one, or remove it"
            )


def load_labelmap(path: Path | str, *, known_clusters: set[int] | None = None) -> LabelMap:
    """Read and validate a label map file."""
    path = Path(path)
    return parse_labelmap(load_yaml(path, id_keys={"cluster_words": "cluster id"}), str(path),
                          known_clusters=known_clusters)


def label_words(
    labelmap: LabelMap, cluster_words: dict[int, list[str]], *, cluster_weight: float,
    keep: Callable[[str, LabelSpec], bool] | None = None,
) -> dict[str, dict[str, float]]:
    """word → {label: weight}: keywords weigh 1, words of assigned clusters ``cluster_weight``.

    A label's excluded words are removed from it; a word that is a keyword of one label
    is not counted as a cluster word of another; ``keep(word, label)``, when given, must
    accept a cluster word for it to count.
    """
    out: dict[str, dict[str, float]] = {}
    for lab in labelmap.labels:
        for w in lab.keywords:
            out.setdefault(w, {})[lab.id] = 1.0
    if cluster_weight > 0:
        for lab in labelmap.labels:
            for c in lab.clusters:
                for w in cluster_words.get(c, []):
                    if w in out and lab.id not in out[w]:
                        continue
                    if keep is not None and w not in lab.keywords and not keep(w, lab):
                        continue
                    out.setdefault(w, {}).setdefault(lab.id, cluster_weight)
    for lab in labelmap.labels:
        for w in lab.exclude:
            if w in out:
                out[w].pop(lab.id, None)
                if not out[w]:
                    del out[w]
    return out


def warn_unseeded(labelmap: LabelMap, seed_counts: dict[str, int]) -> list[str]:
    """Labels with zero seed posts: they can never be predicted. Logged and returned."""
    missing = [lab.id for lab in labelmap.labels if seed_counts.get(lab.id, 0) == 0]
    for lid in missing:
        lab = labelmap.get(lid)
        log.warning("%s:%d: label %r has no seed posts and cannot be predicted; add keywords "
                    "that occur in the captions", labelmap.path, lab.line, lid)
    return missing
