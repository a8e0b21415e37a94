"""The stage contract: Workspace.stage decides up-to-date, writes metas, survives a crash."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from weaklabel.errors import MissingArtifactError, WeaklabelError
from weaklabel.stage import StageReport, Summary, format_report
from weaklabel.workspace import Workspace, atomic_write_text


@dataclass(frozen=True)
class CountSummary(Summary):
    lines: int
    words: tuple[str, ...] = ()
    note: str | None = None

    def text(self) -> str:
        return f"{self.lines} lines"


def count_stage(ws: Workspace, src: Path, *, scale: int = 1, force: bool = False,
                fail_after: str | None = None, calls: list[int] | None = None,
                ) -> StageReport[CountSummary]:
    """A tiny real stage: copies a file's lines (times ``scale``) into two outputs."""
    with ws.stage("count", outputs=("a.txt", "b.txt"), params={"scale": scale},
                  inputs={"src": src}, summary=CountSummary, force=force) as st:
        if st.todo:
            if calls is not None:
                calls.append(1)
            lines = src.read_text().splitlines() * scale
            atomic_write_text(ws.path("a.txt"), "\n".join(lines))
            if fail_after == "a.txt":
                raise WeaklabelError("stopped half-way")
            atomic_write_text(ws.path("b.txt"), "\n".join(reversed(lines)))
            st.done(CountSummary(len(lines), tuple(sorted(set(lines)))),
                    rows={"a.txt": len(lines), "b.txt": len(lines)})
    return st.report


@pytest.fixture
def src(tmp_path: Path) -> Path:
    p = tmp_path / "src.txt"
    p.write_text("x\ny\nz\n")
    return p


def test_a_stage_writes_metas_and_is_then_up_to_date(tmp_path: Path, src: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    calls: list[int] = []
    first = count_stage(ws, src, calls=calls)
    assert not first.up_to_date and first.summary == CountSummary(3, ("x", "y", "z"))
    assert first.rows == {"a.txt": 3, "b.txt": 3}
    assert first.outputs == (ws.path("a.txt"), ws.path("b.txt"))
    meta = json.loads(ws.meta_path("b.txt").read_text())
    assert meta["stage"] == "count" and meta["rows"] == 3 and meta["params"] == {"scale": 1}
    assert meta["summary"] == {"lines": 3, "words": ["x", "y", "z"]}  # None is left out
    again = count_stage(ws, src, calls=calls)
    assert again.up_to_date and calls == [1]
    assert again.summary == first.summary and again.rows == first.rows  # rebuilt typed
    assert count_stage(ws, src, scale=2, calls=calls).summary.lines == 6 and calls == [1, 1]
    src.write_text("x\n")  # a changed input
    assert count_stage(ws, src, scale=2, calls=calls).summary.lines == 2
    assert not count_stage(ws, src, scale=2, force=True, calls=calls).up_to_date
    assert len(calls) == 4


def test_a_stage_stopped_half_way_is_redone(tmp_path: Path, src: Path) -> None:
    """Outputs of parameters A, a run with B dies after its first output: going back to
    A must not trust the mixed outputs."""
    ws = Workspace(tmp_path / "ws")
    count_stage(ws, src)
    with pytest.raises(WeaklabelError, match="half-way"):
        count_stage(ws, src, scale=2, fail_after="a.txt")
    assert ws.path("a.txt").read_text().count("\n") == 5  # the B version is in place
    back = count_stage(ws, src)
    assert not back.up_to_date
    assert ws.path("a.txt").read_text() == "x\ny\nz"


def test_a_meta_of_another_shape_means_run_again(tmp_path: Path, src: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    count_stage(ws, src)
    for name in ("a.txt", "b.txt"):
        meta = json.loads(ws.meta_path(name).read_text())
        meta["summary"] = {"posts": 3}  # an older tool's summary: no `lines`
        ws.meta_path(name).write_text(json.dumps(meta))
    assert not count_stage(ws, src).up_to_date


def test_a_missing_input_names_its_command_before_any_file_is_made(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    missing = r"tokens.parquet does not exist; run `weaklabel tokenize` first"
    with pytest.raises(MissingArtifactError, match=missing), ws.stage(
            "embed", outputs=("v",), params={},
            inputs={"tokens.parquet": ws.path("tokens.parquet")}, summary=CountSummary):
        pass
    assert not ws.root.exists()


def test_a_missing_file_the_user_names_points_at_its_setting(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    nope = tmp_path / "nope.yaml"
    with pytest.raises(WeaklabelError) as e, ws.stage(
            "export", outputs=("x",), params={}, inputs={"labelmap": nope},
            summary=CountSummary):
        pass
    assert str(e.value) == (f"{nope} does not exist; check the 'labelmap' setting (the "
                            "config or its command-line option)")


def test_the_stage_holds_the_workspace_lock(tmp_path: Path, src: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    with ws.stage("count", outputs=("a.txt",), params={}, inputs={"src": src},
                  summary=CountSummary) as st:
        with pytest.raises(WeaklabelError, match="in use by another weaklabel run"):
            count_stage(ws, src)
        atomic_write_text(ws.path("a.txt"), "x")
        st.done(CountSummary(1), rows={"a.txt": 1})
    assert st.report.rows == {"a.txt": 1}


def test_a_body_that_forgets_done_is_a_bug_and_writes_no_meta(tmp_path: Path,
                                                                src: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(RuntimeError, match="without calling done"), ws.stage(
            "count", outputs=("a.txt",), params={}, inputs={"src": src},
            summary=CountSummary):
        atomic_write_text(ws.path("a.txt"), "x")
    assert not ws.meta_path("a.txt").exists()


def test_an_output_outside_the_workspace_gets_its_meta_beside_it(tmp_path: Path,
                                                                  src: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    out = tmp_path / "elsewhere" / "data.txt"
    with ws.stage("count", outputs=(out,), params={}, inputs={"src": src},
                  summary=CountSummary) as st:
        if st.todo:
            atomic_write_text(out, "x")
            st.done(CountSummary(1), rows={"data.txt": 1})
    assert st.report.outputs == (out,)
    assert json.loads((out.parent / "data.txt.meta.json").read_text())["rows"] == 1


def test_format_report_is_the_one_printer(tmp_path: Path) -> None:
    r = StageReport("count", (tmp_path / "a.txt",), {"a.txt": 3}, CountSummary(3),
                    elapsed=1.234)
    assert format_report(r) == f"3 lines in 1.23s → {tmp_path / 'a.txt'}"
    up = StageReport("count", (), {}, CountSummary(3), up_to_date=True, elapsed=0.01)
    assert format_report(up) == "count up to date: 3 lines"
    assert format_report(up, table=True) == "count      up to date     0.0s  3 lines"


def test_contracts_stages_agree_with_made_by_and_the_readme() -> None:
    """The newcomer's map (contracts.STAGES, README "How it works") names every
    artifact a missing-input error points to, with the stage that writes it."""
    from weaklabel.contracts import STAGES
    from weaklabel.workspace import MADE_BY

    writers: dict[str, list[str]] = {}
    for s in STAGES:
        for out in s.outputs:
            writers.setdefault(out, []).append(s.stage)
    for artifact, made_by in MADE_BY.items():
        assert artifact in writers, artifact
        assert writers[artifact][0] in made_by, (artifact, made_by, writers[artifact])
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    how = readme.split("## How it works", 1)[1].split("\n## ", 1)[0]
    for s in STAGES:
        row = next((line for line in how.splitlines() if line.startswith(f"| {s.stage} |")),
                   None)
        assert row is not None, s.stage
        for out in s.outputs:
            if not out.startswith("cfg."):
                assert f"`{out}`" in row, (s.stage, out)


def test_every_stage_has_the_one_signature() -> None:
    """Every ``run_<stage>`` in contracts.STAGES is ``(ws, cfg, *, force, progress) ->
    StageReport[...]``, so build calls each through :class:`StageFn`; further options
    (purge's ``apply``) are keyword-only with a default. The review stage's writer is
    not a ``run_*`` yet."""
    import importlib
    import inspect

    from weaklabel.contracts import STAGES

    checked = []
    for s in STAGES:
        module, name = s.run.rsplit(".", 1)
        fn = getattr(importlib.import_module(module), name)
        if s.stage == "reviewed":
            continue
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        shape = [(p.name, p.kind) for p in params[:4]]
        assert all(p.kind == p.KEYWORD_ONLY and p.default is not p.empty for p in params[4:])
        assert shape == [("ws", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                         ("cfg", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                         ("force", inspect.Parameter.KEYWORD_ONLY),
                         ("progress", inspect.Parameter.KEYWORD_ONLY)], s.run
        assert str(sig.return_annotation).startswith("StageReport["), s.run
        checked.append(s.stage)
    assert {"tokenize", "sample", "export", "report", "eval"} <= set(checked)


def test_every_run_function_has_the_stage_signature() -> None:
    """``run_`` names a stage and nothing else: every public ``run_*`` function in the
    package has the one stage signature (the build, the review server and the decision
    transfers are verbs of their own), listed in contracts.STAGES or not (restore)."""
    import importlib
    import inspect
    import pkgutil

    import weaklabel

    found = []
    for info in pkgutil.walk_packages(weaklabel.__path__, "weaklabel."):
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if not (name.startswith("run_") and inspect.isfunction(fn)
                    and fn.__module__ == info.name):
                continue
            sig = inspect.signature(fn)
            params = list(sig.parameters.values())
            assert [(p.name, p.kind) for p in params[:4]] == [
                ("ws", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                ("cfg", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                ("force", inspect.Parameter.KEYWORD_ONLY),
                ("progress", inspect.Parameter.KEYWORD_ONLY)], f"{info.name}.{name}"
            assert all(p.kind == p.KEYWORD_ONLY and p.default is not p.empty
                       for p in params[4:]), f"{info.name}.{name}"
            assert str(sig.return_annotation).startswith("StageReport["), name
            found.append(name)
    assert {"run_tokenize", "run_restore", "run_export", "run_eval"} <= set(found)
