"""Property tests: any posts table or label map gives a result or one clear error line,
never a traceback (issue 7). The config loader's property is in test_config_ranges.py."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weaklabel.errors import WeaklabelError
from weaklabel.labels.labelmap import load_labelmap
from weaklabel.posts import read_posts

# derandomize: the same examples on every run, so CI cannot turn red by chance.
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# Pieces that break readers: quotes, separators, newlines, BOMs, bytes that are not UTF-8,
# JSON-looking cells, paths that escape, huge or negative counts.
_PIECES = st.sampled_from([
    b"post_id", b"caption", b"images", b"likes", b"comments", b"created_at", b",", b"\t",
    b"\n", b"\r\n", b'"', b"'", b"|", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\x00", b"[", b"]",
    b'["a.jpg"]', b"../x.jpg", b"/etc/passwd", b"C:\\x.jpg", b"1,234", b"-5", b"1e400",
    b"nan", b"\xed\x95\x9c", b"\\xff", b"a/b.jpg", b" ", b"{", b"}", b"null", b"true"])
_CSV = st.lists(_PIECES, max_size=40).map(b"".join)


def _one_line(exc: WeaklabelError, path: Path) -> None:
    msg = str(exc)
    assert msg and "Traceback" not in msg
    assert "\n" not in msg  # one line to print
    assert str(path.name) in msg or "encoding" in msg or "column" in msg


@SETTINGS
@given(body=_CSV)
def test_any_csv_gives_posts_or_one_error(tmp_path: Path, body: bytes) -> None:
    p = tmp_path / "posts.csv"
    p.write_bytes(b"post_id,caption,images,likes\n" + body)
    try:
        posts, images = read_posts(p)
    except WeaklabelError as exc:
        _one_line(exc, p)
    else:
        assert posts["post_id"].is_unique and (posts["post_id"] != "").all()
        assert not images["image"].str.startswith(("/", "../")).any()
        assert all(s.encode("utf-8") for s in images["image"])  # Parquet can hold them


_JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(),
              st.text(max_size=8), st.sampled_from(["../x", "/etc/passwd", "\udcff.jpg"])),
    lambda kids: st.one_of(st.lists(kids, max_size=3),
                           st.dictionaries(st.text(max_size=4), kids, max_size=3)),
    max_leaves=8)
_ROW = st.fixed_dictionaries({}, optional={
    "post_id": _JSON_VALUES, "caption": _JSON_VALUES, "images": _JSON_VALUES,
    "likes": _JSON_VALUES, "comments": _JSON_VALUES, "created_at": _JSON_VALUES})


@SETTINGS
@given(rows=st.lists(st.one_of(_ROW, _JSON_VALUES), min_size=1, max_size=5))
def test_any_jsonl_gives_posts_or_one_error(tmp_path: Path, rows: list[object]) -> None:
    p = tmp_path / "posts.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    try:
        posts, images = read_posts(p)
    except WeaklabelError as exc:
        _one_line(exc, p)
    else:
        assert posts["post_id"].is_unique
        assert all(s.encode("utf-8") for s in images["image"])


_WORD = st.one_of(st.text(max_size=6), st.integers(-3, 50), st.booleans(), st.none(),
                  st.floats(allow_nan=True))
_LABEL_BODY = st.fixed_dictionaries({}, optional={
    "name": _WORD, "clusters": st.one_of(_WORD, st.lists(_WORD, max_size=4)),
    "keywords": st.one_of(_WORD, st.lists(_WORD, max_size=4)),
    "exclude": st.one_of(_WORD, st.lists(_WORD, max_size=3)), "background": _WORD,
    "extra": _WORD})
_MAP = st.one_of(
    st.fixed_dictionaries({"labels": st.one_of(
        _WORD, st.lists(_WORD, max_size=2),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 9)),
                        st.one_of(_LABEL_BODY, _WORD), max_size=4))},
        optional={"version": _WORD, "other": _WORD}),
    _WORD, st.lists(_WORD, max_size=3))


@SETTINGS
@given(data=_MAP)
def test_any_label_map_gives_a_map_or_one_error(tmp_path: Path, data: object) -> None:
    p = tmp_path / "labelmap.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    try:
        lm = load_labelmap(p, known_clusters=set(range(10)))
    except WeaklabelError as exc:
        _one_line(exc, p)
    else:
        assert lm.ids and len(set(lm.ids)) == len(lm.ids) and all(lm.ids)


@SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("labels:- []{}&*!|>#'\"\n\t 0a,.?")),
                    max_size=80))
def test_any_yaml_text_as_a_label_map_gives_a_map_or_one_error(tmp_path: Path,
                                                                text: str) -> None:
    p = tmp_path / "labelmap.yaml"
    p.write_text(text, encoding="utf-8")
    try:
        load_labelmap(p)
    except WeaklabelError as exc:
        _one_line(exc, p)


def test_an_error_naming_a_newline_is_still_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from weaklabel.cli import app

    p = tmp_path / "posts.csv"
    p.write_text('"post\nid",caption\n1,x\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["tokenize", str(p), "-w", str(tmp_path / "ws"), "-q"])
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "missing column 'post_id'" in r.stderr
    assert "'post\\nid'" in r.stderr
