"""The workspace (atomic writes, meta, up-to-date checks, lock) and the data contracts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weaklabel import __version__
from weaklabel.contracts import (
    ABSTAIN,
    POST_LABELS,
    TOKENS,
    WORD_CLUSTERS,
    check_frame,
    conform,
)
from weaklabel.errors import MissingArtifactError, WeaklabelError
from weaklabel.workspace import (
    Workspace,
    atomic_path,
    atomic_write_text,
    digest_json,
    file_digest,
    read_parquet,
    write_parquet,
)


def _clusters(**overrides: object) -> pd.DataFrame:
    data = {"word": ["b", "a", "c"], "cluster": [1, 0, 0], "count": [3, 2, 1],
            "similarity": [0.5, 0.9, 0.7]}
    data.update(overrides)  # type: ignore[arg-type]
    return pd.DataFrame(data)


# --- atomic writes -----------------------------------------------------------------------


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "첫째\n")
    atomic_write_text(target, "둘째\n")
    assert target.read_text(encoding="utf-8") == "둘째\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("crash mid-write")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_directory_write_is_removed(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "d") as tmp:
        tmp.mkdir()
        (tmp / "x").write_text("1")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


# --- parquet artifacts -------------------------------------------------------------------


def test_write_parquet_checks_sorts_and_round_trips(tmp_path: Path) -> None:
    p = tmp_path / "word_clusters.parquet"
    written = write_parquet(_clusters(extra=[0, 0, 0]), p, WORD_CLUSTERS)
    assert written["word"].tolist() == ["a", "c", "b"]  # sorted by (cluster, word)
    back = read_parquet(p, WORD_CLUSTERS)
    assert back.columns.tolist() == WORD_CLUSTERS.names  # extra columns are dropped
    assert back["word"].tolist() == ["a", "c", "b"]


def test_write_parquet_refuses_a_bad_frame_and_writes_nothing(tmp_path: Path) -> None:
    p = tmp_path / "word_clusters.parquet"
    with pytest.raises(WeaklabelError, match="key word of word_clusters repeats"):
        write_parquet(_clusters(word=["a", "a", "c"]), p, WORD_CLUSTERS)
    assert list(tmp_path.iterdir()) == []


def test_same_frame_gives_byte_identical_parquet(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_parquet(_clusters(), a, WORD_CLUSTERS)
    write_parquet(_clusters().iloc[::-1], b, WORD_CLUSTERS)  # input order does not matter
    assert a.read_bytes() == b.read_bytes()


def test_missing_artifact_says_which_command_makes_it(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "build")
    with pytest.raises(MissingArtifactError) as e:
        ws.read("tokens.parquet", TOKENS)
    assert str(e.value) == (f"{tmp_path / 'build' / 'tokens.parquet'} does not exist; "
                            "run `weaklabel tokenize` first")
    with pytest.raises(WeaklabelError, match="run `weaklabel embed` first"):
        ws.require("vectors.kv")
    with pytest.raises(WeaklabelError, match="run `weaklabel the stage before` first"):
        ws.require("unknown.bin")
    assert not (tmp_path / "build").exists()  # checking does not create the workspace


def test_damaged_parquet_is_a_user_error(tmp_path: Path) -> None:
    p = tmp_path / "tokens.parquet"
    p.write_bytes(b"not parquet at all")
    with pytest.raises(WeaklabelError, match="cannot read Parquet .*re-run the stage"):
        read_parquet(p, TOKENS)


def test_artifact_breaking_its_contract_is_named_on_read(tmp_path: Path) -> None:
    p = tmp_path / "tokens.parquet"
    pd.DataFrame({"post_id": ["a"], "tokens": [["x"]]}).to_parquet(p)
    with pytest.raises(WeaklabelError, match="tokens lacks column.*caption_hash"):
        read_parquet(p, TOKENS)


# --- meta and up-to-date checks ----------------------------------------------------------


def test_meta_round_trip_and_up_to_date(tmp_path: Path) -> None:
    ws = Workspace(tmp_path).ensure()
    (tmp_path / "a.parquet").write_bytes(b"x")
    params = {"k": 3, "words": ("a", "b")}
    inputs = {"tokens.parquet": "abc"}
    ws.write_meta("a.parquet", stage="cluster", params=params, inputs=inputs, rows=5,
                  elapsed=1.23456)
    meta = ws.read_meta("a.parquet")
    assert meta is not None
    assert meta["version"] == __version__ and meta["stage"] == "cluster"
    assert meta["rows"] == 5 and meta["elapsed_s"] == 1.235
    assert ws.is_up_to_date("a.parquet", params=params, inputs=inputs)
    assert not ws.is_up_to_date("a.parquet", params={**params, "k": 4}, inputs=inputs)
    assert not ws.is_up_to_date("a.parquet", params=params, inputs={"tokens.parquet": "abd"})
    (tmp_path / "a.parquet").unlink()
    assert not ws.is_up_to_date("a.parquet", params=params, inputs=inputs)


def test_meta_from_another_version_or_damaged_is_stale(tmp_path: Path) -> None:
    ws = Workspace(tmp_path).ensure()
    (tmp_path / "a.kv").write_bytes(b"x")
    ws.write_meta("a.kv", stage="embed", params={}, inputs={})
    meta_p = ws.meta_path("a.kv")
    meta = json.loads(meta_p.read_text(encoding="utf-8"))
    meta_p.write_text(json.dumps({**meta, "version": "0.0.0"}), encoding="utf-8")
    assert not ws.is_up_to_date("a.kv", params={}, inputs={})
    meta_p.write_text("{broken", encoding="utf-8")
    assert ws.read_meta("a.kv") is None
    assert not ws.is_up_to_date("a.kv", params={}, inputs={})


def test_digests(tmp_path: Path) -> None:
    assert digest_json({"a": 1, "b": [1, 2]}) == digest_json({"b": [1, 2], "a": 1})
    assert digest_json({"a": (1, 2)}) == digest_json({"a": [1, 2]})
    assert digest_json({"a": 1}) != digest_json({"a": 2})
    p = tmp_path / "f"
    p.write_bytes(b"x" * 3000)
    assert file_digest(p, chunk=7) == file_digest(p)
    assert len(file_digest(p)) == 40


def test_lock_refuses_a_second_run(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\nfrom pathlib import Path\nfrom weaklabel.workspace import Workspace\n"
         "with Workspace(Path(sys.argv[1])).lock('test'):\n"
         "    print('locked', flush=True)\n    sys.stdin.read()\n", str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        # the message names the run that holds the lock, not the one refused (issue 7)
        with pytest.raises(WeaklabelError, match=rf"is in use by another weaklabel run "
                           rf"\(`weaklabel test`, pid {holder.pid}\); wait for it to finish "
                           rf"before `weaklabel embed`"), Workspace(tmp_path).lock("embed"):
            pass
    finally:
        holder.communicate("", timeout=20)
    with Workspace(tmp_path).lock("embed"):  # free again once the other run ends
        pass


# --- contracts ---------------------------------------------------------------------------


def test_abstain_is_the_empty_string() -> None:
    assert ABSTAIN == ""


def test_missing_column_names_file_and_expected_columns() -> None:
    with pytest.raises(WeaklabelError) as e:
        check_frame(_clusters().drop(columns=["count"]), WORD_CLUSTERS, "x.parquet")
    assert str(e.value) == ("x.parquet: word_clusters lacks column(s) count; "
                            "expected word, cluster, count, similarity")


def test_nullable_int_column_names_the_missing_row() -> None:
    df = _clusters(cluster=pd.array([1, None, 0], dtype="Int64"))
    with pytest.raises(WeaklabelError, match=r"column 'cluster' .* must be int; bad value at "
                                             r"row 2: <NA>"):
        check_frame(df, WORD_CLUSTERS, "x")


def test_float_column_of_objects_names_the_bad_row() -> None:
    df = _clusters(similarity=pd.Series([0.5, "high", 0.7], dtype=object))
    with pytest.raises(WeaklabelError, match=r"must be float; bad value at row 2: 'high'"):
        check_frame(df, WORD_CLUSTERS, "x")


def test_empty_frame_with_the_columns_is_valid() -> None:
    check_frame(_clusters().iloc[0:0], WORD_CLUSTERS, "x")


def test_conform_sorts_stably_by_the_schema() -> None:
    df = pd.DataFrame({"post_id": ["b", "a"], "label": ["x", ABSTAIN], "confidence": [1.0, 0.0],
                       "source": ["seed", "none"], "evidence": ["", ""], "top_label": ["x", ""],
                       "extra": [1, 2]})
    out = conform(df, POST_LABELS, "x")
    assert out["post_id"].tolist() == ["a", "b"]
    assert out.columns.tolist() == POST_LABELS.names
    assert out.index.tolist() == [0, 1]


_cell = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.floats(allow_nan=True),
                  st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=4), _cell), min_size=1, max_size=12), st.data())
def test_check_frame_reports_the_first_bad_row(words: list[object], data: st.DataObject) -> None:
    """Whatever the column holds, the error names the first cell that is not text, by its
    1-based position (the index labels are not row numbers a person can find)."""
    n = len(words)
    df = pd.DataFrame({
        "word": pd.Series(words, dtype=object),
        "cluster": list(range(n)), "count": [1] * n, "similarity": [0.5] * n,
    })
    df.index = data.draw(st.permutations(list(range(100, 100 + n))))  # labels, not positions
    bad = [i for i, w in enumerate(words) if not isinstance(w, str)]
    if not bad:
        if len(set(words)) == n:
            check_frame(df, WORD_CLUSTERS, "x")
        return
    with pytest.raises(WeaklabelError) as e:
        check_frame(df, WORD_CLUSTERS, "x")
    shown = "row" if len(bad) == 1 else "rows"
    assert f"bad value at {shown} {bad[0] + 1}" in str(e.value)
    assert "column 'word'" in str(e.value)


def test_atomic_write_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    """A link planted at the temporary name must not redirect an artifact (issue 7)."""
    import os

    from weaklabel.workspace import atomic_write_text

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    target = tmp_path / "ws" / "report.html"
    target.parent.mkdir()
    os.symlink(victim, target.with_name(f".report.html.{os.getpid()}.tmp"))
    atomic_write_text(target, "artifact")
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert target.read_text(encoding="utf-8") == "artifact" and not target.is_symlink()
