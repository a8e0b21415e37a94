"""The README's command reference is generated from --help; notice when it is stale."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("gen_cli_reference",
                                                  ROOT / "tools/gen_cli_reference.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_in_readme_is_current():
    # A subprocess: the reference fixes COLUMNS and colour before typer renders help.
    res = subprocess.run([sys.executable, str(ROOT / "tools/gen_cli_reference.py"),
                          str(ROOT / "README.md"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr + "\nrun `make docs` to regenerate"


def test_reference_lists_every_command(tmp_path):
    ref = subprocess.run(
        [sys.executable, "-c", "import runpy,sys; m=runpy.run_path(sys.argv[1]); "
         "print(m['reference']())", str(ROOT / "tools/gen_cli_reference.py")],
        capture_output=True, text=True, check=True).stdout
    for cmd in ("tokenize", "embed", "cluster", "propagate", "purge", "dedup", "sample",
                "export", "build", "eval", "report", "restore"):
        assert f"### `weaklabel {cmd}`" in ref
        assert "Example: weaklabel" in ref.split(f"### `weaklabel {cmd}`")[1].split("### ")[0]


def test_stale_reference_is_detected(tmp_path):
    readme = tmp_path / "README.md"
    mod = _tool()
    readme.write_text(f"# x\n\n{mod.START}\nold text\n{mod.END}\n", encoding="utf-8")
    res = subprocess.run([sys.executable, str(ROOT / "tools/gen_cli_reference.py"),
                          str(readme), "--check"], capture_output=True, text=True)
    assert res.returncode == 1
    assert "stale" in res.stderr
    assert "old text" in readme.read_text(encoding="utf-8")  # --check never rewrites


def test_readme_gives_the_two_setup_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    ci = (ROOT / ".ci/run").read_text(encoding="utf-8")
    assert "make test" in ci
