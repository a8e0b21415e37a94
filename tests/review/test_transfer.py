"""Decisions in and out (CSV, Ground Truth) and the reviewed artifacts they make."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from weaklabel.cli import app
from weaklabel.review.reviewed import drop_rejected, reviewed_frames, write_reviewed
from weaklabel.review.store import Decision, DecisionStore

runner = CliRunner()


def test_reviewed_frames_combine_votes() -> None:
    ds = [
        Decision("1", "ana", "p1", "p1.jpg", "lips", "reject", seq=1),
        Decision("2", "ana", "p2", "p2.jpg", "lips", "relabel", "nails", seq=2),
        Decision("3", "ben", "p2", "p2.jpg", "lips", "accept", "lips", seq=3),
        Decision("4", "cy", "p2", "p2.jpg", "lips", "relabel", "nails", seq=4),
        Decision("5", "ana", "t1", "", "nails", "relabel", "", seq=5),  # none of the labels
        Decision("6", "ana", "p3", "p3.jpg", "lips", "accept", "lips", seq=6),
        Decision("7", "ana", "", "", "", "undo", "", undoes="6", seq=7),
    ]
    labels, images = reviewed_frames(ds)
    assert labels.to_dict(orient="records") == [
        {"post_id": "p2", "label": "nails", "shown": "lips"},
        {"post_id": "t1", "label": "", "shown": "nails"}]
    got = {(r.image, r.label): r.verdict for r in images.itertuples()}
    assert got == {("p1.jpg", "lips"): "reject", ("p2.jpg", "lips"): "reject",
                   ("p2.jpg", "nails"): "accept"}
    il = pd.DataFrame({"image": ["p1.jpg", "p2.jpg", "p3.jpg"], "label": ["lips"] * 3})
    assert drop_rejected(il, images)["image"].tolist() == ["p3.jpg"]


def test_write_reviewed_rewrites_only_on_change(rfx) -> None:  # type: ignore[no-untyped-def]
    assert write_reviewed(rfx.ws).changed == []  # no database: no files
    with DecisionStore.open(rfx.ws) as s:
        s.record(Decision("a", "ana", "p01", "d/p01.jpg", "nails", "reject"))
    r = write_reviewed(rfx.ws)
    assert r.changed == ["reviewed_labels.parquet", "reviewed_images.parquet"]
    before = (rfx.ws / "reviewed_images.parquet").stat().st_mtime_ns
    assert write_reviewed(rfx.ws).changed == []
    assert (rfx.ws / "reviewed_images.parquet").stat().st_mtime_ns == before
    with DecisionStore.open(rfx.ws) as s:
        s.record(Decision("b", "ana", "p02", "", "lips", "accept", "lips"))
    assert write_reviewed(rfx.ws).changed == ["reviewed_labels.parquet"]


def test_csv_import_export_round_trip(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.csv"
    src.write_text("post_id,image,label,reviewer\n"
                   "p00,,nails,ana\n"          # relabel lips → nails
                   ",d/p01.jpg,nails,ben\n"     # an image, its post found by the workspace
                   "t1,,,ana\n",                # none of the labels
                   encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(src), "-c", str(rfx.config)])
    assert r.exit_code == 0, r.output
    assert "3 decisions read: 3 new" in r.output
    r = runner.invoke(app, ["review", "import", str(src), "-c", str(rfx.config)])
    assert r.exit_code == 0 and "0 new, 3 already imported" in r.output
    labels = pd.read_parquet(rfx.ws / "reviewed_labels.parquet")
    assert dict(zip(labels["post_id"], labels["label"], strict=True)) == {
        "p00": "nails", "p01": "nails", "t1": ""}
    out = tmp_path / "out.csv"
    r = runner.invoke(app, ["review", "export", "-w", str(rfx.ws), "-o", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "post_id,image,label,reviewer,action,shown,decision_id"
    assert lines[1].startswith("p00,,nails,ana,relabel,lips,imp-")
    assert lines[2].startswith("p01,d/p01.jpg,nails,ben,accept,nails,")
    # the export imported into a fresh store is the same standing decisions
    other = tmp_path / "ws2"
    other.mkdir()
    for f in ("post_labels.parquet", "post_images.parquet"):
        (other / f).write_bytes((rfx.ws / f).read_bytes())
    r = runner.invoke(app, ["review", "import", str(out), "-w", str(other)])
    assert r.exit_code == 0, r.output
    assert (other / "reviewed_labels.parquet").read_bytes() == \
        (rfx.ws / "reviewed_labels.parquet").read_bytes()


def test_a_row_imported_before_never_undoes_a_later_decision(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def imp(name: str, body: str, head: str = "post_id,label,reviewer") -> str:
        f = tmp_path / name
        f.write_text(head + "\n" + body, encoding="utf-8", newline="")
        r = runner.invoke(app, ["review", "import", str(f), "-c", str(rfx.config)])
        assert r.exit_code == 0, r.output
        return str(r.output)

    def standing() -> str:
        labels = pd.read_parquet(rfx.ws / "reviewed_labels.parquet")
        return str(dict(zip(labels["post_id"], labels["label"], strict=True))["p00"])

    imp("d1.csv", "p00,lips,ana\n")
    imp("d2.csv", "p00,nails,ana\n")  # decided since (in the server, or a later file)
    assert standing() == "nails"
    # the first file re-saved by a spreadsheet (CRLF) and grown by a row: its old row
    # adds nothing and does not undo the later decision
    assert "1 new, 1 already imported" in imp("d1.csv", "p00,lips,ana\r\np01,nails,ana\r\n")
    assert standing() == "nails"
    # a changed mind back is recorded with its own decision id
    imp("d3.csv", "p00,lips,ana,again-1\n", head="post_id,label,reviewer,decision_id")
    assert standing() == "lips"


def test_the_same_decision_id_for_two_decisions_in_one_file_is_refused(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "d.csv"
    f.write_text("post_id,label,reviewer,decision_id\np00,lips,ana,x\np01,nails,ana,x\n",
                 encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(f), "-c", str(rfx.config)])
    assert r.exit_code == 1 and "decision id 'x' is already used" in r.output
    with DecisionStore.open(rfx.ws) as s:
        assert s.count() == 0


def test_import_errors_name_the_line_and_the_fix(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.csv"
    bad.write_text("post_id,label,reviewer\np00,lips,ana\np01,eyes,ana\n", encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(bad), "-c", str(rfx.config)])
    assert r.exit_code == 1
    assert "bad.csv, line 3: label 'eyes' is not a label of this workspace" in r.output
    assert "Traceback" not in r.output
    bad.write_text("id,verdict\n1,x\n", encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(bad), "-c", str(rfx.config)])
    assert r.exit_code == 1 and "needs columns post_id or image, label" in r.output
    bad.write_text("image,label,reviewer\nd/nowhere.jpg,lips,ana\n", encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(bad), "-c", str(rfx.config)])
    assert r.exit_code == 1 and "line 2: image 'd/nowhere.jpg' belongs to no post" in r.output
    bad.write_text("post_id,label,reviewer\np00,lips,ana\nNO_SUCH_POST,lips,ana\n",
                   encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(bad), "-c", str(rfx.config)])
    assert r.exit_code == 1 and "line 3: post_id 'NO_SUCH_POST' is not a post" in r.output
    with DecisionStore.open(rfx.ws) as s:
        assert s.count() == 0  # the first good row of a bad file was not half-imported


def test_groundtruth_manifest_import(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def line(ref: str, name: str, human: str) -> str:
        return json.dumps({"source-ref": ref, "job": 0, "job-metadata": {
            "class-name": name, "confidence": 0.9, "human-annotated": human,
            "type": "groundtruth/image-classification", "job-name": "labeling-job/job"}},
            ensure_ascii=False)
    m = tmp_path / "output.manifest"
    m.write_text("\n".join([line("s3://bucket/photos/d/p03.jpg", "입술 화장", "yes"),
                            line("s3://bucket/photos/d/p04.jpg", "nails", "no")]) + "\n",
                 encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(m), "-c", str(rfx.config)])
    assert r.exit_code == 0, r.output
    assert "1 decisions read: 1 new" in r.output and "1 machine-labelled lines skipped" in r.output
    imgs = pd.read_parquet(rfx.ws / "reviewed_images.parquet")
    assert imgs.to_dict(orient="records") == [  # shown nails, the worker said lips
        {"image": "d/p03.jpg", "post_id": "p03", "label": "lips", "verdict": "accept"},
        {"image": "d/p03.jpg", "post_id": "p03", "label": "nails", "verdict": "reject"}]
    m.write_text(line("s3://bucket/x/unknown.jpg", "lips", "yes") + "\n", encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(m), "-c", str(rfx.config)])
    assert r.exit_code == 1 and "line 1: source-ref" in r.output


def test_queue_cli(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "q.csv"
    r = runner.invoke(app, ["review", "queue", "-w", str(rfx.ws), "--limit", "5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text(encoding="utf-8").splitlines()
    # the two labels' first items, the label of more estimated errors per post first
    k1, t2 = sorted(lines[1:3])
    assert k1.startswith("k1,d/k1.jpg,lips,0.9000,keywords say nails")
    assert t2.startswith("t2,,nails,0.4000,") and "abstained" in t2
    r = runner.invoke(app, ["review", "queue", "-w", str(tmp_path / "nowhere"), "-o", str(out)])
    assert r.exit_code == 1 and "run `weaklabel propagate` first" in r.output


def test_serve_and_export_errors_are_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["review", "serve", "-w", str(tmp_path / "empty")])
    assert r.exit_code == 1 and "post_labels.parquet does not exist" in r.output
    r = runner.invoke(app, ["review", "serve", "-w", str(tmp_path), "--reviewers", "a b,c"])
    assert r.exit_code == 2 and "--reviewers 'a b,c'" in r.output
    r = runner.invoke(app, ["review", "export", "-w", str(tmp_path), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "review something first" in r.output
    assert "Traceback" not in r.output


def test_queue_output_onto_a_workspace_artifact_is_refused(rfx) -> None:  # type: ignore[no-untyped-def]
    target = rfx.ws / "post_labels.parquet"
    before = target.read_bytes()
    r = runner.invoke(app, ["review", "queue", "-c", str(rfx.config), "-o", str(target)])
    assert r.exit_code != 0 and "post_labels.parquet" in r.output
    assert target.read_bytes() == before


def test_an_accept_of_what_was_shown_reimports_after_a_rebuild(rfx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "d.csv"
    f.write_text("post_id,label,reviewer,action\np00,,ana,accept\n", encoding="utf-8")
    r = runner.invoke(app, ["review", "import", str(f), "-c", str(rfx.config)])
    assert r.exit_code == 0 and "1 new" in r.output, r.output
    labels = rfx.ws / "post_labels.parquet"  # a rebuild shows p00 another label now
    df = pd.read_parquet(labels)
    df.loc[df["post_id"] == "p00", "label"] = "nails"
    df.to_parquet(labels)
    r = runner.invoke(app, ["review", "import", str(f), "-c", str(rfx.config)])
    assert r.exit_code == 0 and "0 new, 1 already imported" in r.output, r.output
