"""CLI: sample, export, report through typer's CliRunner (exit code first, then files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

SRC = str(Path(__file__).resolve().parents[2] / "src")


def make_app() -> typer.Typer:
    """The real application: proves the commands are registered where users run them."""
    from weaklabel.cli import app

    return app


runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(make_app(), list(args))


def test_sample_export_report(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("sample", "-c", str(fx.config), "--min-confidence", "0.5", "--quota", "lips=3",
            "-q")
    assert r.exit_code == 0, r.output
    assert (fx.ws / "sample.parquet").exists() and (fx.ws / "sample_funnel.csv").exists()
    head = r.stdout.splitlines()[0].split()
    assert head == ["label", "labelled", "purge", "dedup", "confidence", "per-post",
                    "sampled", "quota"]
    assert any(ln.split()[:7] == ["lips", "7", "5", "5", "5", "4", "3"]
               for ln in r.stdout.splitlines())
    assert "(total)" in r.stdout and "images sampled" in r.stdout

    r = run("sample", "-c", str(fx.config), "--min-confidence", "0.5", "--quota", "lips=3")
    assert r.exit_code == 0 and "up to date" in r.stdout

    out = tmp_path / "dataset"
    r = run("export", str(out), "-c", str(fx.config), "--split", "0.5,0.5", "--seed", "7",
            "--source-prefix", "s3://bucket/dl", "--link", "copy", "-q")
    assert r.exit_code == 0, r.output
    assert (out / "manifest.jsonl").exists() and (out / "dataset.csv").exists()
    assert r.stdout.splitlines()[0].split() == ["label", "train", "val", "total"]
    assert "copy" in r.stdout
    first = json.loads((out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first["source-ref"].startswith("s3://bucket/dl/")

    assert r.stdout.splitlines()[-1].endswith(f"→ {out}, {fx.ws / 'export.rejects.csv'}")
    r = run("export", str(out), "-c", str(fx.config), "--split", "0.5,0.5", "--seed", "7",
            "--source-prefix", "s3://bucket/dl", "--link", "copy", "-q")
    assert r.exit_code == 0 and "export up to date: exported" in r.stdout, r.output
    r = run("export", str(out), "-c", str(fx.config), "-q")  # other settings: re-exported
    assert r.exit_code == 0, r.output
    assert "replaced" in r.stdout and "hardlink" in r.stdout
    r = run("export", str(out), "-c", str(fx.config), "--force", "-q")
    assert r.exit_code == 0 and "up to date" not in r.stdout, r.output
    (out / "mine.txt").write_text("a person's file")
    r = run("export", str(out), "-c", str(fx.config), "--seed", "8")
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith(f"Error: export folder {out} holds 1 "
                                                        "file(s) weaklabel did not write")

    html = tmp_path / "r.html"
    r = run("report", "-c", str(fx.config), "-o", str(html), "-q")
    assert r.exit_code == 0, r.output
    assert html.exists() and "wrote" in r.stdout


def test_report_never_writes_over_another_artifact(fx) -> None:  # type: ignore[no-untyped-def]
    # `report -o build/post_labels.parquet` replaced the labels with HTML
    target = fx.ws / "post_labels.parquet"
    before = target.read_bytes()
    r = run("report", "-c", str(fx.config), "-o", str(target), "-q")
    assert r.exit_code == 2, r.output
    assert f"--output {target} is a file the workspace {fx.ws} keeps; write the report " \
           "elsewhere, e.g. -o report.html" in r.output
    assert target.read_bytes() == before
    own = fx.ws / "report.html"  # its own default output, named, is rewritten
    for _ in range(2):
        r = run("report", "-c", str(fx.config), "-o", str(own), "-q")
        assert r.exit_code == 0, r.output


def test_quotas_in_one_comma_list_or_given_twice(fx) -> None:  # type: ignore[no-untyped-def]
    # "lips=3,nails=2" was "quota for unknown label 'lips=3,nails'"; a label given twice
    # kept the last number without a word
    from weaklabel.cli_dataset import parse_quotas

    assert parse_quotas(["lips=3,nails=2", "other=1"]) == {"lips": 3, "nails": 2, "other": 1}
    r = run("sample", "-c", str(fx.config), "--quota", "lips=3", "--quota", "lips=5")
    assert r.exit_code == 2
    assert "--quota lips= is given twice (3 and 5); keep one" in r.output
    assert not (fx.ws / "sample.parquet").exists()


def test_sample_unknown_quota_label(fx) -> None:  # type: ignore[no-untyped-def]
    r = run("sample", "-c", str(fx.config), "--quota", "lipz=3")
    assert r.exit_code == 1
    assert "Error: quota for unknown label 'lipz'; valid labels: lips, nails, other" in r.output
    assert not (fx.ws / "sample.parquet").exists()


def test_sample_bad_quota_syntax(fx) -> None:  # type: ignore[no-untyped-def]
    r = run("sample", "-c", str(fx.config), "--quota", "lips")
    assert r.exit_code == 2 and "must look like LABEL=N" in r.output  # a usage error


def test_sample_before_propagate(tmp_path: Path) -> None:
    r = run("sample", "-w", str(tmp_path / "ws"))
    assert r.exit_code == 1
    assert "image_labels.parquet does not exist; run `weaklabel propagate` first" in r.output


def test_export_before_sample(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("export", str(tmp_path / "o"), "-c", str(fx.config))
    assert r.exit_code == 1 and "run `weaklabel sample` first" in r.output


def test_export_bad_options(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("sample", "-c", str(fx.config), "-q").exit_code == 0
    r = run("export", str(tmp_path / "o"), "-c", str(fx.config), "--format", "imagefolder,zip")
    # options that cannot be used are usage errors: exit 2
    assert r.exit_code == 2 and ("export.formats must be a non-empty list of imagefolder, "
                                 "manifest, csv (unknown: zip)") in r.output
    r = run("export", str(tmp_path / "o"), "-c", str(fx.config), "--split", "0.9,0.2")
    assert r.exit_code == 2 and "must be >= 0 and add up to 1" in r.output
    r = run("export", str(tmp_path / "o"), "-c", str(fx.config), "--link", "teleport")
    assert r.exit_code == 2 and "export.link must be one of hardlink, copy, symlink" in r.output
    r = run("export", "-c", str(fx.config))
    assert r.exit_code == 2 and "no export folder given" in r.output


def test_export_reports_missing_sources(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("sample", "-c", str(fx.config), "-q").exit_code == 0
    (fx.root / "20190302/p03.jpg").unlink()  # gone between sample and export
    r = run("export", str(tmp_path / "o"), "-c", str(fx.config), "-q")
    assert r.exit_code == 0, r.output
    assert "1 source image(s) missing" in r.output
    rej = pd.read_csv(fx.ws / "export.rejects.csv")
    assert rej["image"].tolist() == ["20190302/p03.jpg"]


@pytest.mark.parametrize("command", ["sample", "export", "report"])
def test_help_has_one_example(command: str) -> None:
    r = run(command, "--help")
    assert r.exit_code == 0
    assert r.stdout.count("Example: weaklabel " + command) == 1


def test_registered_in_main_app() -> None:
    import typer.main

    from weaklabel.cli import app

    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"sample", "export", "report"} <= names


def test_module_import_is_light() -> None:
    code = ("import sys, weaklabel.cli_dataset; "
            "heavy = [m for m in ('pandas', 'PIL', 'numpy', 'pyarrow') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_with_real_purge_and_dedup(fx_bare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """purge.csv and duplicates.csv from the real image stages feed sample and export."""
    from weaklabel.config import Config, with_overrides
    from weaklabel.images.dedup import run_dedup
    from weaklabel.images.purge import image_stage, run_purge

    cfg = with_overrides(Config(), {"images.workers": 1, "images.near_threshold": 10})
    run_purge(*image_stage(fx_bare.root, fx_bare.ws, cfg))
    run_dedup(*image_stage(fx_bare.root, fx_bare.ws, cfg))
    purge = pd.read_csv(fx_bare.ws / "purge.csv", keep_default_na=False)
    assert purge.set_index("path").loc["20190303/p05.jpg", "status"] == "truncated"
    dups = pd.read_csv(fx_bare.ws / "duplicates.csv", keep_default_na=False)
    assert {"20190304/p06.jpg", "20190305/p07.jpg"} <= set(dups["kept"]) | set(dups["duplicate"])
    r = run("sample", "-c", str(fx_bare.config), "-q")
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(fx_bare.ws / "sample.parquet")
    assert "20190303/p05.jpg" not in set(df["image"])
    assert len({"20190304/p06.jpg", "20190305/p07.jpg"} & set(df["image"])) == 1
    r = run("export", str(tmp_path / "o"), "-c", str(fx_bare.config), "-q")
    assert r.exit_code == 0, r.output


def test_a_picture_replaced_under_its_name_is_exported_again(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The sample, purge.csv and duplicates.csv stay the same when a sampled picture is
    replaced by another under the same name; the export must not call itself up to date
    and keep the old file."""
    import io
    import os

    from PIL import Image

    from weaklabel.images.purge import image_stage, run_purge

    r = run("sample", "-c", str(fx.config), "--min-confidence", "0.5", "-q")
    assert r.exit_code == 0, r.output
    out = tmp_path / "dataset"
    r = run("export", str(out), "-c", str(fx.config), "--link", "copy", "-q")
    assert r.exit_code == 0, r.output
    image = str(pd.read_parquet(fx.ws / "sample.parquet")["image"].iloc[0])
    buf = io.BytesIO()
    Image.new("RGB", (96, 72), (200, 30, 90)).save(buf, "JPEG", quality=90)
    new = buf.getvalue()
    tmp = fx.root / "new.part"
    tmp.write_bytes(new)
    os.replace(tmp, fx.root / image)
    run_purge(*image_stage(fx.root, fx.ws))
    r = run("export", str(out), "-c", str(fx.config), "--link", "copy", "-q")
    assert r.exit_code == 0, r.output
    assert "up to date" not in r.stdout
    got = {p.read_bytes() for p in out.rglob("*") if p.is_file() and p.suffix == ".jpg"}
    assert new in got


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_empty_folders_in_out_take_the_export(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("sample", "-c", str(fx.config), "--min-confidence", "0.5", "-q")
    assert r.exit_code == 0, r.output
    out = tmp_path / "dataset"
    (out / "train" / "lips" / "keep").mkdir(parents=True)  # a folder, no file: empty
    r = run("export", str(out), "-c", str(fx.config), "--link", "copy", "-q")
    assert r.exit_code == 0, r.output
    assert (out / "manifest.jsonl").is_file() and list((out / "train" / "lips").glob("*.jpg"))


def test_a_failed_replace_leaves_the_earlier_export_as_it_was(fx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run("sample", "-c", str(fx.config), "--min-confidence", "0.5", "-q")
    assert r.exit_code == 0, r.output
    out = tmp_path / "dataset"
    r = run("export", str(out), "-c", str(fx.config), "--link", "copy", "--format",
            "imagefolder,manifest", "-q")
    assert r.exit_code == 0, r.output
    before = _snapshot(out)
    (out / "dataset.csv").mkdir()  # where the new export's CSV goes: the move fails
    r = run("export", str(out), "-c", str(fx.config), "--link", "copy", "-q")
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1].startswith("Error: ")
    assert "dataset.csv" in r.output.strip().splitlines()[-1]
    assert _snapshot(out) == before  # every earlier file back, nothing of the new one
    assert not [p for p in tmp_path.iterdir() if "weaklabel-" in p.name]  # no leftovers
    (out / "dataset.csv").rmdir()
    r = run("export", str(out), "-c", str(fx.config), "--link", "copy", "-q")
    assert r.exit_code == 0, r.output
    assert (out / "dataset.csv").is_file()
