"""``review import`` on a stranger's files: encodings, separators, misspelt columns and
labels, unknown ids, contradictions, broken Ground Truth manifests. Each error is one
line naming the file, the line and the fix, and nothing of a bad file is imported."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from weaklabel.cli import app
from weaklabel.review.store import DecisionStore

runner = CliRunner()


def _import(rfx, path: Path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    r = runner.invoke(app, ["review", "import", str(path), "-c", str(rfx.config)])
    assert "Traceback" not in r.output
    return r.exit_code, r.output


@pytest.mark.parametrize("encoding, sep", [("cp949", ","), ("utf-8-sig", ";"),
                                           ("utf-16", "\t"), ("utf-8", "|")])
def test_a_decisions_csv_of_any_common_encoding_and_separator_is_read(
        rfx, tmp_path: Path, encoding: str, sep: str) -> None:  # type: ignore[no-untyped-def]
    # CP949 was "not UTF-8 text", a ';' file "needs columns … found post_id;label;reviewer"
    p = tmp_path / "d.csv"
    p.write_bytes(sep.join(["post_id", "label", "reviewer"]).encode(encoding)
                  + f"\np00{sep}네일{sep}아나\n".encode(encoding.replace("-sig", "")))
    code, out = _import(rfx, p)
    assert code == 0, out
    labels = pd.read_parquet(rfx.ws / "reviewed_labels.parquet")
    assert labels.to_dict(orient="records") == [
        {"post_id": "p00", "label": "nails", "shown": "lips"}]


@pytest.mark.parametrize("text, message", [
    ("post,lable,reviewer\np00,lips,ana\n",
     "needs columns post_id or image, label and reviewer; found 'post', 'lable', "
     "'reviewer'; rename 'post' → 'post_id', 'lable' → 'label'"),
    ("post_id,label,reviewer\np00,lipz,ana\n",
     "line 2: label 'lipz' is not a label of this workspace; did you mean 'lips'? Use one "
     "of lips, nails, other"),
    ("post_id,label,reviewer\np00,Nails,ana\n", "did you mean 'nails'?"),
    # an unknown post was imported as a reviewed label of a post that does not exist
    ("post_id,label,reviewer\np00,lips,ana\nnope,lips,ana\n",
     "line 3: post_id 'nope' is not a post of this workspace; fix the id (ids are text: "
     "'007' is not '7')"),
    ("post_id,label,reviewer\n7,lips,ana\n", "post_id '7' is not a post"),
    ("post_id,image,label,reviewer\np00,d/p01.jpg,lips,ana\n",
     "line 2: image 'd/p01.jpg' is not an image of post 'p00'"),
    ("image,label,reviewer\n../d/p01.jpg,lips,ana\n", "escapes the image root"),
    # the later of two answers won without a word
    ("post_id,label,reviewer\np00,nails,ana\np01,lips,ana\np00,lips,ana\n",
     "line 4: ana decided 'p00' differently on line 2 (nails against lips); keep one"),
    ("post_id,label,reviewer\np00,,ana\np00,lips,ana\n", "(none against lips)"),
    ("", "the file is empty; a decisions CSV starts with the header post_id,label,reviewer"),
])
def test_a_bad_decisions_csv_is_one_line_and_imports_nothing(
        rfx, tmp_path: Path, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "d.csv"
    p.write_text(text, encoding="utf-8")
    code, out = _import(rfx, p)
    assert code == 1 and message in out, out
    assert out.startswith(f"Error: {p}") and out.count("\n") == 1
    with DecisionStore.open(rfx.ws) as s:
        assert s.count() == 0


def test_the_same_decision_twice_and_a_journal_that_changed_its_mind_import(
        rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "d.csv"
    p.write_text("post_id,image,label,reviewer,action\np00,,nails,ana,\np00,,nails,ana,\n"
                 "p00,,lips,ben,Accept\n"  # "Accept" was refused
                 ",d\\p02.jpg,lips,ana,\n", encoding="utf-8")  # so was a Windows path
    code, out = _import(rfx, p)
    assert code == 0 and "4 decisions read: 3 new, 1 already imported" in out, out
    # decision ids given: rows of an exported journal, the later one stands
    p.write_text("post_id,label,reviewer,decision_id\np01,lips,ana,d1\np01,nails,ana,d2\n",
                 encoding="utf-8")
    code, out = _import(rfx, p)
    assert code == 0, out
    labels = pd.read_parquet(rfx.ws / "reviewed_labels.parquet")
    assert dict(zip(labels["post_id"], labels["label"], strict=True))["p01"] == "nails"


def _gt(ref: object = "s3://bucket/photos/d/p03.jpg", index: int = 0, **meta: object
        ) -> str:
    m = {"human-annotated": "yes", "job-name": "labeling-job/job", **meta}
    return json.dumps({"source-ref": ref, "job": index, "job-metadata": m},
                      ensure_ascii=False)


@pytest.mark.parametrize("lines, message", [
    ([_gt(**{"class-name": "lips"}), "{broken"],
     "line 2: not JSON (Expecting property name"),
    (["[1, 2]"], "line 1: expected a JSON object, got list; a manifest holds one JSON "
                 "object per line"),
    ([json.dumps({"job": 0, "job-metadata": {"class-name": "lips"}})],
     "line 1: no source-ref (the image's path or s3:// URL)"),
    ([_gt(index=7, **{"class-map": {"0": "lips", "1": "nails"}})],
     "line 1: class index 7 is not in job-metadata.class-map (0, 1); fix the index"),
    ([_gt(**{"class-name": "lipz"})],
     "line 1: class-name 'lipz' is not a label of this workspace; did you mean 'lips'?"),
    ([_gt("s3://bucket/elsewhere/p03.jpg", **{"class-name": "lips"})],
     "line 1: source-ref 's3://bucket/elsewhere/p03.jpg' matches no image of this "
     "workspace; its path must end with the image's path under the image root"),
])
def test_a_broken_groundtruth_manifest_is_one_line(
        rfx, tmp_path: Path, lines: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    m = tmp_path / "output.manifest"
    m.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out = _import(rfx, m)
    assert code == 1 and message in out, out
    assert out.count("\n") == 1


def test_a_groundtruth_class_index_is_read_through_its_class_map(
        rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = tmp_path / "output.manifest"  # CP949 too: it was a UnicodeDecodeError traceback
    m.write_bytes((_gt(index=1, **{"class-map": {"0": "입술 화장", "1": "네일"}}) + "\n"
                   ).encode("cp949"))
    code, out = _import(rfx, m)
    assert code == 0 and "1 decisions read: 1 new" in out, out
    imgs = pd.read_parquet(rfx.ws / "reviewed_images.parquet")
    assert imgs.to_dict(orient="records") == [
        {"image": "d/p03.jpg", "post_id": "p03", "label": "nails", "verdict": "accept"}]


def test_a_file_imported_again_after_a_rebuild_adds_nothing(
        rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the rebuild took the reviewed label as a seed, so the row now reads as an accept
    # where it was a relabel: "decision id … is already used for another decision"
    from weaklabel.contracts import POST_LABELS
    from weaklabel.workspace import Workspace

    p = tmp_path / "d.csv"
    p.write_text("post_id,label,reviewer\np00,nails,ana\n", encoding="utf-8")
    assert _import(rfx, p)[0] == 0
    ws = Workspace(rfx.ws)
    pl = ws.read("post_labels.parquet", POST_LABELS)
    pl.loc[pl["post_id"] == "p00", ["label", "top_label"]] = "nails"
    ws.write("post_labels.parquet", pl, POST_LABELS)
    code, out = _import(rfx, p)
    assert code == 0 and "1 decisions read: 0 new, 1 already imported" in out, out
    # another label from the same reviewer for the same post is still refused
    p.write_text("post_id,label,reviewer,decision_id\np00,lips,ana,"
                 f"{_stored_id(rfx)}\n", encoding="utf-8")
    code, out = _import(rfx, p)
    assert code == 1 and "is already used for another decision" in out, out


def _stored_id(rfx) -> str:  # type: ignore[no-untyped-def]
    with DecisionStore.open(rfx.ws) as s:
        return s.decisions()[0].id


def test_export_never_writes_over_a_file_the_workspace_keeps(
        rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # `-o build/review/decisions.sqlite` replaced every decision with a CSV
    p = tmp_path / "d.csv"
    p.write_text("post_id,label,reviewer\np00,nails,ana\n", encoding="utf-8")
    assert _import(rfx, p)[0] == 0
    for target in (rfx.ws / "review" / "decisions.sqlite", rfx.ws / "post_labels.parquet"):
        before = target.read_bytes()
        r = runner.invoke(app, ["review", "export", "-w", str(rfx.ws), "-o", str(target)])
        assert r.exit_code == 2, r.output
        assert f"--output {target} is a file the workspace {rfx.ws} keeps" in r.output
        assert target.read_bytes() == before
    r = runner.invoke(app, ["review", "export", "-w", str(rfx.ws), "-o",
                            str(rfx.ws / "decisions.csv")])  # a new CSV beside them is fine
    assert r.exit_code == 0 and "1 decisions →" in r.output, r.output


def test_a_fifo_given_as_the_decisions_file_is_named_not_waited_on(
        rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os

    fifo = tmp_path / "d.csv"
    os.mkfifo(fifo)  # opening it for reading blocked the import until a writer came
    code, out = _import(rfx, fifo)
    assert code == 1 and f"decisions file {fifo} is a FIFO (named pipe), not a file" in out


def test_the_review_queue_itself_is_not_imported_as_decisions(
        rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    q = tmp_path / "queue.csv"
    r = runner.invoke(app, ["review", "queue", "-w", str(rfx.ws), "-o", str(q)])
    assert r.exit_code == 0, r.output
    code, out = _import(rfx, q)  # it accepted every queued label as a review
    assert code == 1 and "this is a review queue (columns confidence, why), not " \
                         "decisions" in out, out
    with DecisionStore.open(rfx.ws) as s:
        assert s.count() == 0
