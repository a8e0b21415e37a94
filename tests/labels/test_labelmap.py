"""The label map: validation errors name file, line and fix; label_words semantics."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from weaklabel.errors import WeaklabelError
from weaklabel.labels.labelmap import label_words, load_labelmap, warn_unseeded

GOOD = """\
version: 1
labels:
  lips:
    name: 입술 화장
    clusters: [3, 1, 3]
    keywords: [립스틱, 틴트, Dior]
    exclude: [립밤]
  "42":
    keywords: 네일
  other:
    name: 기타
    background: true
    clusters: [5]
"""

Write = Callable[..., Path]


def test_good_map(write_labelmap: Write) -> None:
    lm = load_labelmap(write_labelmap(GOOD), known_clusters={0, 1, 2, 3, 4, 5})
    assert lm.ids == ["lips", "42", "other"]
    lips = lm.get("lips")
    assert lips.name == "입술 화장" and lips.clusters == (3, 1)  # repeats dropped, order kept
    assert lips.keywords == ("립스틱", "틴트", "dior") and lips.exclude == ("립밤",)
    assert lips.line == 3
    assert lm.get("42").keywords == ("네일",) and lm.get("42").name == "42"
    assert lm.background == "other"


@pytest.mark.parametrize("text, line, fragments", [
    ("version: 1\nlabels:\n  lips:\n    clusters: [1, 9]\n", 4,
     ["cluster 9 of 'lips' does not exist (clusters.csv has 0..5)", "re-run weaklabel cluster"]),
    ("version: 1\nlabels:\n  lips:\n    clusters: [1, 2]\n  hair:\n    clusters: [2]\n", 6,
     ["cluster 2 is claimed by 'hair' and by 'lips' (line 4); give it to one label"]),
    ("version: 1\nlabels:\n  no:\n    keywords: [a]\n", 3,
     ["key 'no' is read by YAML as False; quote it: 'no':"]),
    ("version: 1\nlabels:\n  lips:\n    keywords: [a]\n  lips:\n    keywords: [b]\n", 5,
     ["duplicate key 'lips' (first on line 3)"]),
    ("version: 1\nlabels:\n  lips:\n    keyword: [립스틱]\n", 4,
     ["unknown key 'keyword' in label 'lips'; did you mean 'keywords'?"]),
    ("version: 1\nlabels:\n  lips:\n    colour: red\n    keywords: [a]\n", 4,
     ["unknown key 'colour' in label 'lips'; valid: name, clusters, keywords"]),
    ("version: 1\nlabels:\n  lips:\n    name: 입술\n", 3,
     ["label 'lips' has no clusters and no keywords"]),
    ("version: 1\nlabels:\n  lips:\n", 3, ["label 'lips' has no clusters and no keywords"]),
    ("version: 1\nlabels:\n  lips:\n    keywords: [no, 립스틱]\n", 4,
     ["YAML reads an unquoted no/yes/on/off/null as False", "quote it"]),
    ("version: 1\nlabels:\n  lips:\n    clusters: [a]\n", 4,
     ["cluster id 'a' of 'lips' is not a whole number"]),
    ("version: 1\nlabels:\n  lips:\n    clusters: three\n", 4,
     ["clusters of 'lips' must be a list of ids"]),
    ("version: 1\nlabels:\n  a:\n    keywords: [x]\n    background: true\n"
     "  b:\n    keywords: [y]\n    background: true\n", 6,
     ["labels 'a' and 'b' are both background; keep one"]),
    ("version: 1\nlabels:\n  lips:\n    keywords: [x]\n    background: maybe\n", 5,
     ["background must be true or false"]),
    ("version: 2\nlabels:\n  lips:\n    keywords: [x]\n", 1, ["version must be 1"]),
    ("version: 1\nlabel:\n  lips:\n    keywords: [x]\n", 2,
     ["unknown top-level key 'label'; did you mean 'labels'?"]),
    ("version: 1\nlabels:\n  lips:\n    keywords: [x]\nsettings: 1\n", 5,
     ["unknown top-level key 'settings'; expected version, labels and cluster_words"]),
    # the recorded cluster words (cluster_words:) are validated like every other key
    ("labels:\n  lips:\n    clusters: [3]\ncluster_word:\n  3: [립스틱]\n", 4,
     ["unknown top-level key 'cluster_word'; did you mean 'cluster_words'?"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words: [립스틱, 틴트]\n", 4,
     ["cluster_words must map cluster ids to their words", "copy it from "
      "labelmap.draft.yaml"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  3: [립스틱]\n  lips: [틴트]\n",
     6, ["cluster_words key 'lips' is not a cluster id"]),
    # '0.5' said "not a cluster id"; 1.5 said "quote it: '1.5':", which led to that
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  3: [립스틱]\n  '0.5': [틴트]\n",
     6, ["cluster_words key '0.5' is not a cluster id: a whole-number cluster id"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  3: [립스틱]\n  1.5: [틴트]\n",
     6, ["cluster_words key '1.5' is read by YAML as 1.5; a whole-number cluster id is "
         "expected there, e.g. 3:"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  '4': [틴트]\n", 5,
     ["cluster_words key '4' is not a cluster id", "write it unquoted: 4:"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  3: [립스틱, 틴트]\n"
     "  4: [틴트]\n", 6,
     ["word '틴트' is recorded under cluster 3 and cluster 4", "keep it under one"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  3: [립스틱, no]\n", 5,
     ["unquoted no/yes/on/off/null"]),
    ("version: 1\nlabels: []\n", 2, ["'labels' must map label ids to their settings"]),
    ("version: 1\nlabels:\n  a/b:\n    keywords: [x]\n", 3,
     ["label id 'a/b' holds '/', which a folder name cannot", "use an id like 'a_b'",
      "a_b: {name: 'a/b'}"]),
    ("labels:\n  ok:\n    keywords: [y]\n  '<a|b>':\n    keywords: [x]\n", 4,
     ["label id '<a|b>' holds '<', '>', '|'"]),
    ("labels:\n  'say \"hi\"':\n    keywords: [x]\n", 2, ["holds '\"'"]),
    ("labels:\n  nul:\n    keywords: [x]\n", 2, ["reserved device name on Windows"]),
    ("labels:\n  'x.':\n    keywords: [x]\n", 2, ["starts or ends with a space or a dot"]),
    ("version: 1\nlabels:\n  lips: [립스틱]\n", 3, ["label 'lips' must be a mapping"]),
    ("version: 1\nlabels:\n  lips:\n    keywords: {a: 1}\n", 4, ["expected a list of words"]),
    # a nested list or mapping was read as the word "['립스틱']", which never matches
    ("version: 1\nlabels:\n  lips:\n    keywords: [[립스틱], 틴트]\n", 4,
     ["expected a word, got a list (['립스틱'])", "one flat list"]),
    ("labels:\n  lips:\n    clusters: [3]\ncluster_words:\n  3: [틴트, {a: 1}]\n", 5,
     ["expected a word, got a mapping"]),
    ("version: 1\nlabels:\n  lips:\n    name: [입술]\n    keywords: [x]\n", 4,
     ["name of 'lips' must be text"]),
    # review files take a name for its label: two labels of one name, or a name that is
    # another label's id, sent a decision to the wrong label
    ("labels:\n  a: {name: 입술, keywords: [x]}\n  b: {name: 입술, keywords: [y]}\n", 3,
     ["labels 'a' (line 2) and 'b' are both named '입술'; give each label its own name"]),
    ("labels:\n  a: {name: b, keywords: [x]}\n  b: {keywords: [y]}\n", 2,
     ["label 'a' is named 'b', the id of label 'b' (line 3)"]),
    ("labels:\n  a: {keywords: [x, 틴트], exclude: [틴트]}\n", 2,
     ["label 'a' has '틴트' both in keywords and in exclude; keep it in one"]),
])
def test_errors_name_file_line_and_fix(write_labelmap: Write, text: str, line: int,
                                       fragments: list[str]) -> None:
    p = write_labelmap(text)
    with pytest.raises(WeaklabelError) as e:
        load_labelmap(p, known_clusters={0, 1, 2, 3, 4, 5})
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    for frag in fragments:
        assert frag in msg
    assert "\n" not in msg


def test_not_a_mapping(write_labelmap: Write) -> None:
    p = write_labelmap("- lips\n")
    with pytest.raises(WeaklabelError, match="a label map is a mapping with 'version' and"):
        load_labelmap(p)


def test_cluster_ids_before_any_clustering(write_labelmap: Write) -> None:
    p = write_labelmap("labels:\n  lips:\n    clusters: [0]\n")
    with pytest.raises(WeaklabelError) as e:
        load_labelmap(p, known_clusters=set())
    assert str(e.value) == (f"{p}:3: cluster 0 of 'lips' does not exist: no clusters yet; "
                            "run `weaklabel cluster` first or remove the ids")


def test_without_known_clusters_any_id_is_accepted(write_labelmap: Write) -> None:
    lm = load_labelmap(write_labelmap("labels:\n  lips:\n    clusters: [99]\n"))
    assert lm.get("lips").clusters == (99,)


def test_label_words_weights_exclusions_and_precedence(write_labelmap: Write) -> None:
    lm = load_labelmap(write_labelmap("""\
labels:
  lips:
    clusters: [0]
    keywords: [립스틱]
    exclude: [립밤]
  hair:
    clusters: [1]
    keywords: [틴트]
"""))
    cluster_words = {0: ["틴트", "립밤", "글로스"], 1: ["염색", "립스틱"], 2: ["무관"]}
    words = label_words(lm, cluster_words, cluster_weight=0.5)
    assert words == {
        "립스틱": {"lips": 1.0},   # a keyword of lips is not a cluster word of hair
        "틴트": {"hair": 1.0},     # ... and a keyword of hair is not one of lips
        "글로스": {"lips": 0.5},
        "염색": {"hair": 0.5},
    }                              # 립밤 is excluded from lips; cluster 2 is unassigned
    assert label_words(lm, cluster_words, cluster_weight=0.0) == {
        "립스틱": {"lips": 1.0}, "틴트": {"hair": 1.0}}


def test_warn_unseeded_logs_the_line(write_labelmap: Write,
                                     caplog: pytest.LogCaptureFixture) -> None:
    lm = load_labelmap(write_labelmap("labels:\n  lips:\n    keywords: [a]\n"
                                      "  hair:\n    keywords: [b]\n"))
    with caplog.at_level(logging.WARNING, logger="weaklabel.labels.labelmap"):
        assert warn_unseeded(lm, {"lips": 4}) == ["hair"]
    assert "labelmap.yaml:4: label 'hair' has no seed posts" in caplog.text


def test_label_ids_differing_only_by_case_are_rejected(tmp_path):
    from weaklabel.labels.labelmap import load_labelmap

    p = tmp_path / "map.yaml"
    p.write_text("version: 1\nlabels:\n  hair:\n    keywords: [헤어]\n"
                 "  Hair:\n    keywords: [머리]\n", encoding="utf-8")
    with pytest.raises(WeaklabelError, match=r"map.yaml:5: label 'Hair' differs from 'hair' "
                                             r"\(line 3\) only by case"):
        load_labelmap(p)


def test_a_keyword_in_two_labels_is_warned_about(tmp_path, caplog):
    from weaklabel.labels.labelmap import load_labelmap

    p = tmp_path / "map.yaml"
    p.write_text("version: 1\nlabels:\n  nails:\n    keywords: [네일]\n"
                 "  swatches:\n    keywords: [네일, 발색]\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        lm = load_labelmap(p)
    assert lm.ids == ["nails", "swatches"]
    assert "keyword '네일' belongs to 'nails' and 'swatches'" in caplog.text


def test_keywords_are_folded_as_tokens_are(tmp_path: Path) -> None:
    """Tokens are lower-cased (normalize.fold): so is every keyword, not only ASCII ones."""
    p = tmp_path / "map.yaml"
    p.write_text("version: 1\nlabels:\n  cars:\n    keywords: [G70사진, iPhone15, 제네시스]\n",
                 encoding="utf-8")
    assert load_labelmap(p).labels[0].keywords == ("g70사진", "iphone15", "제네시스")


def test_label_ids_from_names() -> None:
    from weaklabel.labels.labelmap import label_id_from_name, label_id_problem

    assert label_id_from_name("교통/건축/국토") == "교통_건축_국토"
    assert label_id_from_name("원피스/스커트") == "원피스_스커트"
    assert label_id_from_name("IT / 과학") == "IT_과학"
    assert label_id_from_name("a/b", {"A_b"}) == "a_b_2"  # folders ignore case
    assert label_id_from_name("///") == "label"
    for name in ("교통/건축/국토", 'a"b', "con", "x|y<z>", " . "):
        assert label_id_problem(label_id_from_name(name)) is None
    assert label_id_problem("이별(부정)") is None  # parentheses are folder-safe


def test_our_own_row_names_are_no_label_ids(write_labelmap: Callable[..., Path]) -> None:
    from weaklabel.labels.labelmap import label_id_from_name

    # a label "(total)" made a second total row in sample_funnel.csv, and a reviewer's
    # pick of a label "(none)" was read as "none of the labels"
    for lid in ("(total)", "(None)"):
        lm = write_labelmap(f"labels:\n  {lid!r}:\n    keywords: [립스틱]\n"
                            "  nails:\n    keywords: [네일]\n")
        with pytest.raises(WeaklabelError) as e:
            load_labelmap(lm)
        assert f":2: label id {lid!r} names weaklabel's own row" in str(e.value)
        # and the fix it suggests is no such row name either
        assert f"{{name: {lid.strip('()')!r}}}" in str(e.value), str(e.value)
    assert label_id_from_name("(none)") == "none"
    assert label_id_from_name("(total)") == "total"


def test_a_name_with_a_slash_lives_in_name(write_labelmap: Callable[..., Path]) -> None:
    lm = load_labelmap(write_labelmap("labels:\n  IT_과학:\n    name: IT/과학\n"
                                      "    keywords: [인공지능]\n"))
    assert lm.ids == ["IT_과학"] and lm.get("IT_과학").name == "IT/과학"
    assert lm.id_of() == {"IT/과학": "IT_과학", "IT_과학": "IT_과학"}
