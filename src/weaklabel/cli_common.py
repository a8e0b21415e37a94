"""Shared CLI pieces: options defined once, the error wrapper, config resolution.

Only typer and the standard library are imported here: ``weaklabel --help`` must answer
at once, without starting a JVM or importing gensim, sklearn or PIL.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from weaklabel.errors import WeaklabelError
from weaklabel.wsbase import error_exit, one_line
from weaklabel.wsbase import setup_logging as setup_logging  # its home: the fast path's too

if TYPE_CHECKING:
    from weaklabel.config import Config
    from weaklabel.stage import StageReport
    from weaklabel.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])


def PathOrURL(*, file_okay: bool = True, dir_okay: bool = True  # noqa: N802
              ) -> Callable[[Any], Any]:
    """A typer ``callback``: a local path must exist (and be a file or a folder, as
    asked); a storage URL (``s3://bucket/key``) passes on as text, checked when read."""
    kind = "File" if not dir_okay else "Directory" if not file_okay else "Path"

    def check(value: Any) -> Any:
        if value is None:
            return None
        text = str(value)
        if "://" in text and not text.startswith("file://"):
            return text
        path = Path(text.removeprefix("file://"))
        if not path.exists():
            raise typer.BadParameter(f"{kind} '{path}' does not exist.")
        if not file_okay and not path.is_dir():
            raise typer.BadParameter(f"{kind} '{path}' is a file.")
        if not dir_okay and path.is_dir():
            raise typer.BadParameter(f"{kind} '{path}' is a directory.")
        return str(path)

    return check


def is_url(value: str | None) -> bool:
    """Whether a command-line value names object storage rather than a local path."""
    return value is not None and "://" in value and not value.startswith("file://")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", exists=True, dir_okay=False, readable=True,
        help="YAML config (configs/*.yaml); CLI flags override it.",
    ),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", file_okay=False, help="Workspace folder (default: build)."),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Redo the work even if the output is up to date.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or info logs.")]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", "-j", min=0, help="Worker processes (0: one per core)."),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(one_line(message), err=True)
    return typer.Exit(code)


def stage_command(fn: F) -> F:
    """Turn a :class:`WeaklabelError` into ``Error: …`` on stderr and exit code 1 (2 for
    a :class:`UsageError`: an option that cannot be used).

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (WeaklabelError, KeyboardInterrupt, OSError) as exc:
            # one mapping of errors to messages and codes, the fast dedup path's too
            message, code = error_exit(exc) or (str(exc), 1)
            raise fail(message, code) from None

    return wrapper  # type: ignore[return-value]


def resolve_config(config: Path | None, overrides: dict[str, Any]) -> Config:
    """Load the config file (or defaults) and apply CLI overrides (None = not given)."""
    from weaklabel.config import resolve

    return resolve(config, overrides)


def workspace_of(cfg: Config) -> Workspace:
    """The workspace of a resolved config: every command passes ``-w`` into the config
    (key ``workspace``) first, so the config, its metas and this agree."""
    from weaklabel.workspace import Workspace

    return Workspace(Path(cfg.workspace))


def not_an_artifact(output: Path, ws: Workspace, *, what: str, example: str,
                    stage: str | None = None) -> None:
    """Refuse ``-o`` onto a file the workspace keeps: the decisions database (an export
    over it replaced every decision with a CSV), another stage's artifact (it has a
    ``.meta.json``; ``stage``'s own output may be rewritten), an existing file of
    another kind than ``output``'s, anything in ``review``/``storage``/``cache``/
    ``quarantine``.

    Raises:
        UsageError: naming the file and the fix.
    """
    import json
    import os

    from weaklabel.errors import UsageError

    out, root = os.path.realpath(output), os.path.realpath(ws.root)
    if not out.startswith(root + os.sep):
        return
    rel = Path(os.path.relpath(out, root))
    meta = Path(out + ".meta.json")
    made_by = None
    if meta.exists():
        try:
            made_by = json.loads(meta.read_text(encoding="utf-8")).get("stage", "?")
        except (OSError, ValueError, AttributeError):
            made_by = "?"
    if rel.parts[0] in ("review", "storage", "cache", "quarantine") \
            or (made_by is not None and made_by != stage) \
            or (made_by is None and Path(out).exists()
                and rel.suffix.lower() != Path(example).suffix):
        raise UsageError(f"--output {output} is a file the workspace {ws.root} keeps; write "
                         f"the {what} elsewhere, e.g. -o {example}")


def local_image_root(cfg: Config, given: str | None, *, quiet: bool = True,
                     sample_files: bool = False) -> Config:
    """The config with the local image root in ``images.root``: ``given``, else the
    config's (``images.root``, else ``posts.image_root``). An ``s3://`` root is synced
    into the workspace's mirror first (only new or changed objects are fetched); with
    ``sample_files`` (export, report), a root read in place gets the sample's images as
    files, and the manifest's source-ref then names its objects. A local root imports
    no storage module."""
    from weaklabel.config import with_overrides

    # The setting as written: a Path would fold s3://bucket into s3:/bucket, a local path.
    root = given or cfg.images.root or cfg.posts.image_root
    if root is None:
        return cfg
    if not is_url(root):
        return with_overrides(cfg, {"images.root": root.removeprefix("file://")})
    from weaklabel.storage import stage_inputs

    cfg, _ = stage_inputs(with_overrides(cfg, {"images.root": root}), posts=False,
                          progress=not quiet)
    if sample_files:
        from weaklabel.storage_inplace import materialize_sample

        materialize_sample(cfg.workspace, cfg.images.root)
    return cfg


def echo_report(report: StageReport[Any], *, err: bool = False) -> None:
    """Print a stage's report with the house's one printer (:func:`format_report`)."""
    from weaklabel.stage import format_report

    typer.echo(format_report(report), err=err)


# --- lazy commands -------------------------------------------------------------------------

CommandSpec = tuple[str, str]
"""``(module, attribute)`` of a command: a function (wrapped in :func:`stage_command`
when built) or a :class:`typer.Typer` command group."""


def _target(spec: CommandSpec) -> Any:
    module, attr = spec
    return getattr(importlib.import_module(module), attr)


def build_command(name: str, spec: CommandSpec) -> Any:
    """The click command typer makes of one table entry, as ``app.command(name)`` or
    ``app.add_typer(group, name=name)`` would (plain help: no rich)."""
    import typer.main
    from typer.models import CommandInfo

    target = _target(spec)
    if isinstance(target, typer.Typer):
        target.rich_markup_mode = None
        group = typer.main.get_group(target)
        group.name = name
        return group
    return typer.main.get_command_from_info(
        CommandInfo(name=name, callback=stage_command(target)),
        pretty_exceptions_short=True, rich_markup_mode=None)


def short_help_of(spec: CommandSpec) -> str:
    """The help text typer gives a command, read from its docstring (or a group's
    ``help``) without building the command from its signature."""
    import typer

    target = _target(spec)
    if isinstance(target, typer.Typer):
        return inspect.cleandoc(target.info.help or "")
    return inspect.getdoc(target) or ""


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name, each built on first access: a run that invokes one
    command pays for that command's signature alone (typer reads every parameter's
    annotations and makes its click parameter: ~2 ms a command, 16 of them)."""

    def __init__(self, table: Mapping[str, CommandSpec]) -> None:
        self.table = dict(table)
        self.built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            if name not in self.table:
                raise KeyError(name)
            self.built[name] = build_command(name, self.table[name])
        return self.built[name]

    def __setitem__(self, name: str, cmd: Any) -> None:
        self.built[name] = cmd
        self.table.setdefault(name, ("", ""))

    def __delitem__(self, name: str) -> None:
        del self.table[name]
        self.built.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self.table

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


class LazyGroup(TyperGroup):
    """A typer group whose commands come from :attr:`table` and are built only when
    invoked (or asked for by name); ``--help`` lists them all from their docstrings,
    in table order, with the words click's own listing would print."""

    table: Mapping[str, CommandSpec] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.table)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        from typer._click.utils import make_default_short_help

        names = self.list_commands(ctx)
        if not names:
            return
        # as click's listing: the same limit, the same shortening of the first paragraph
        limit = formatter.width - 6 - max(len(n) for n in names)
        cmds = self.commands
        assert isinstance(cmds, LazyCommands)
        rows = []
        for n in names:
            if n in cmds.built:
                rows.append((n, cmds.built[n].get_short_help_str(limit)))
            else:
                rows.append((n, make_default_short_help(short_help_of(cmds.table[n]),
                                                        limit).strip()))
        with formatter.section("Commands"):
            formatter.write_dl(rows)
