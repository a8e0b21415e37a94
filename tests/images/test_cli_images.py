"""CLI: purge, dedup, restore through typer's CliRunner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

SRC = str(Path(__file__).resolve().parents[2] / "src")


def make_app() -> typer.Typer:
    """The real application: proves the commands are registered where users run them."""
    from weaklabel.cli import app

    return app


runner = CliRunner()


def test_purge_dedup_restore(tree: Path, tmp_path: Path) -> None:
    app = make_app()
    ws = tmp_path / "ws"
    r = runner.invoke(app, ["purge", str(tree), "-w", str(ws), "-q", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert (ws / "purge.csv").exists() and "truncated\t2" in r.stdout
    r = runner.invoke(app, ["dedup", str(tree), "-w", str(ws), "-q", "--threshold", "4",
                            "--method", "dhash", "--apply"])
    assert r.exit_code == 0, r.output
    assert (ws / "duplicates.csv").exists() and "quarantined" in r.stdout
    assert not (tree / "20190304" / "a_copy.jpg").exists()
    r = runner.invoke(app, ["restore", "-w", str(ws), "-q"])
    assert r.exit_code == 0, r.output
    assert (tree / "20190304" / "a_copy.jpg").exists()


def test_errors_are_one_line_and_exit_1(tree: Path, tmp_path: Path) -> None:
    app = make_app()
    r = runner.invoke(app, ["dedup", str(tree), "-w", str(tmp_path / "ws"), "--method", "md5"])
    assert r.exit_code == 2  # a bad option is a usage error
    assert r.stderr.strip() == ("Error: command-line option: images.hash_method must be one "
                                "of ahash, dhash, phash, whash, got 'md5'")
    r = runner.invoke(app, ["restore", "-w", str(tmp_path / "nope")])
    assert r.exit_code == 1 and r.stderr.startswith("Error: workspace")
    r = runner.invoke(app, ["purge", str(tmp_path / "missing"), "-w", str(tmp_path / "ws")])
    assert r.exit_code == 2  # usage error: ROOT must exist


def test_help_has_an_example() -> None:
    app = make_app()
    for cmd in ("purge", "dedup", "restore"):
        r = runner.invoke(app, [cmd, "--help"])
        assert r.exit_code == 0 and f"weaklabel {cmd}" in r.stdout


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = (f"import sys; sys.path.insert(0, {SRC!r}); import weaklabel.cli_images; "
            "print(sorted(m for m in ('PIL', 'numpy', 'pandas', 'imagehash') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dedup_exact_only_and_a_wrong_format_name(tree: Path, tmp_path: Path) -> None:
    app = make_app()
    ws = tmp_path / "ws"
    r = runner.invoke(app, ["dedup", str(tree), "-w", str(ws), "-q", "--exact-only"])
    assert r.exit_code == 0, r.output
    assert "and 0 near duplicates" in r.stdout and ", 0 exact" not in r.stdout
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("images:\n  formats: [JPG]\n", encoding="utf-8")
    r = runner.invoke(app, ["purge", str(tree), "-w", str(ws), "-q", "-c", str(cfg)])
    assert r.exit_code == 1
    assert "cfg.yaml:2: images.formats must be Pillow format names; Pillow reads no " \
        "format 'JPG'" in r.output
    assert "Traceback" not in r.output
