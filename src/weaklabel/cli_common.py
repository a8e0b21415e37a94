"""Shared CLI pieces: options defined once, the error wrapper, config resolution.

Only typer and the standard library are imported here: ``weaklabel --help`` must answer
at once, without starting a JVM or importing gensim, sklearn or PIL.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from weaklabel.errors import ReviewNeeded, UsageError, WeaklabelError

if TYPE_CHECKING:
    from weaklabel.config import Config
    from weaklabel.stage import StageReport
    from weaklabel.workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])

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


def setup_logging(quiet: bool) -> None:
    """Logs go to stderr; stdout carries results only."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    # gensim logs every epoch at INFO: useful to its authors, noise to ours.
    logging.getLogger("gensim").setLevel(logging.WARNING)


def fail(message: str, code: int = 1) -> typer.Exit:
    # One line, whatever a file name or a cell in the message holds.
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    typer.echo(f"Error: {one_line}", err=True)
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
        except UsageError as exc:
            raise fail(str(exc), 2) from None
        except ReviewNeeded as exc:
            raise fail(str(exc), 3) from None
        except WeaklabelError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted; re-run the same command to finish", 130) from None
        except OSError as exc:  # permissions, a full disk, a path that cannot exist
            where = exc.filename if exc.filename is not None else "a file"
            raise fail(f"cannot read or write {where}: {exc.strerror or exc}; check the "
                       "path, its permissions and free space") from None

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


def echo_report(report: StageReport[Any], *, err: bool = False) -> None:
    """Print a stage's report with the house's one printer (:func:`format_report`)."""
    from weaklabel.stage import format_report

    typer.echo(format_report(report), err=err)
