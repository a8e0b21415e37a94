"""The workspace's file primitives on plain strings, with the standard library only.

:class:`~weaklabel.workspace.Workspace` is built on these: the lock, the writable check,
the clean-up of an interrupted run's temporary files, atomic writes and the sidecar
meta. They live apart so that ``weaklabel dedup --exact-only`` (:mod:`weaklabel.
images.exact`), whose whole budget is a few tens of milliseconds before the first file,
takes the same lock and writes the same metas without importing pathlib, dataclasses
or typing (together ~40 ms of start-up).
"""

from __future__ import annotations

import contextlib
import os
import time

from weaklabel import __version__
from weaklabel.errors import WeaklabelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any


PID_MAX = 2**22
"""The largest process id a system hands out (Linux's ``pid_max`` limit; macOS stays
far below it)."""


def parse_pid(text: str) -> int | None:
    """The process id written in a temporary name, or None when ``text`` cannot be one
    (not plain digits, 0, or beyond :data:`PID_MAX`): such a name is not ours."""
    if not (text.isascii() and text.isdigit()) or len(text) > 7:
        return None
    pid = int(text)
    return pid if 0 < pid <= PID_MAX else None


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def tmp_name(target: str) -> str:
    """The temporary file beside ``target`` that an atomic write goes through."""
    head, name = os.path.split(target)
    return os.path.join(head, f".{name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_target(target: str) -> Iterator[str]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    head = os.path.dirname(target)
    if head:
        os.makedirs(head, exist_ok=True)
    tmp = tmp_name(target)
    if os.path.lexists(tmp) and not os.path.isdir(tmp):
        # Never write through a link planted at our temporary name: it may lead anywhere.
        os.unlink(tmp)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                import shutil

                shutil.rmtree(tmp)
            else:
                os.unlink(tmp)
        raise


def remove_stale_tmp(root: str) -> list[str]:
    """Remove ``.NAME.PID.tmp`` files of runs that died (kill -9, power loss) from the
    folder ``root``; only files of processes that no longer exist are touched, so a live
    writer's temporary file is safe even outside the lock. Returns the removed paths."""
    removed: list[str] = []
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return removed
    for name in sorted(names):
        if not (name.startswith(".") and name.endswith(".tmp")):
            continue
        stem, _, digits = name[:-4].rpartition(".")
        pid = parse_pid(digits)
        if len(stem) < 2 or pid is None or _pid_alive(pid):
            continue
        p = os.path.join(root, name)
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(p) and not os.path.islink(p):
                import shutil

                shutil.rmtree(p)
            else:
                os.unlink(p)
            removed.append(p)
            import logging

            logging.getLogger("weaklabel.workspace").info(
                "removed %s, left by an interrupted run", p)
    return removed


def _unwritable(root: str, exc: OSError) -> WeaklabelError:
    return WeaklabelError(
        f"cannot write to the workspace {root} ({exc.strerror}); make it "
        "writable or pass another --workspace")


def check_writable(root: str) -> None:
    """Fail before any work when no new file can be made in the workspace (a read-only
    or full file system), rather than after the work is done."""
    probe = os.path.join(root, f".probe.{os.getpid()}.{time.monotonic_ns()}")
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise _unwritable(root, exc) from exc
    os.close(fd)
    os.unlink(probe)


def ensure_dir(root: str) -> None:
    """Create the workspace folder (and its parents)."""
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise WeaklabelError(f"cannot create workspace {root}: {exc.strerror}") from exc


_HELD_LOCKS: set[int] = set()
"""Descriptors of the workspace locks this process holds. A forked child (a worker of
the image pool) would share each lock with its parent until it exits, so a run killed
with ``kill -9`` stays locked while its orphaned workers wind down: the child closes
its copies at once (:func:`_drop_locks_in_child`); the parent's lock is untouched."""
_FORK_HOOK = False


def _drop_locks_in_child() -> None:
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


@contextlib.contextmanager
def workspace_lock(root: str, what: str = "workspace") -> Iterator[None]:
    """Refuse a second concurrent run on the workspace folder ``root`` (an advisory
    file lock on ``root/.lock``). Inside: the workspace is writable and an interrupted
    run's temporary files are gone.
    """
    import fcntl

    ensure_dir(root)
    try:
        fd = os.open(os.path.join(root, ".lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise _unwritable(root, exc) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            raise WeaklabelError(
                f"{root} is in use by another weaklabel run "
                f"({holder or 'unknown command'}); wait for it to finish before "
                f"`weaklabel {what}`"
            ) from exc
        global _FORK_HOOK
        if not _FORK_HOOK:  # one hook per process closes whatever is held at the fork
            os.register_at_fork(after_in_child=_drop_locks_in_child)
            _FORK_HOOK = True
        _HELD_LOCKS.add(fd)
        # Say who holds the lock, for the run that finds it taken.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"`weaklabel {what}`, pid {os.getpid()}".encode(), 0)
        check_writable(root)
        remove_stale_tmp(root)
        yield
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)


_ESCAPES = {**{i: f"\\u{i:04x}" for i in range(0x20)}, ord("\\"): "\\\\", ord('"'): '\\"',
            ord("\b"): "\\b", ord("\f"): "\\f", ord("\n"): "\\n", ord("\r"): "\\r",
            ord("\t"): "\\t"}
"""What ``json`` escapes in a string with ``ensure_ascii=False`` (its ``ESCAPE_DCT``)."""


class _NotPlain(Exception):  # noqa: N818 - control flow: hand the value to json
    """A value :func:`json_text` leaves to ``json``."""


def json_string(text: str, *, ascii_only: bool) -> str:
    """``json.dumps(text, ensure_ascii=ascii_only)``, without importing ``json`` (which
    imports ``re`` and ``enum``: milliseconds ``dedup --exact-only`` cannot spare)."""
    if not ascii_only or (text.isascii() and "\x7f" not in text):
        return '"' + text.translate(_ESCAPES) + '"'
    out = []
    for c in text:  # json's py_encode_basestring_ascii: all but ' '..'~' as \uXXXX
        n = ord(c)
        if 0x20 <= n < 0x7F:
            out.append(_ESCAPES.get(n, c))
        elif n < 0x10000:
            out.append(_ESCAPES.get(n, f"\\u{n:04x}"))
        else:
            n -= 0x10000
            out.append(f"\\u{0xD800 | (n >> 10):04x}\\u{0xDC00 | (n & 0x3FF):04x}")
    return '"' + "".join(out) + '"'


def _plain_json(value: Any, indent: str) -> str:
    t = type(value)
    if t is str:
        return json_string(value, ascii_only=False)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return int.__repr__(value)
    if t is float and value - value == 0:  # finite: json writes NaN and Infinity itself
        return float.__repr__(value)
    inner = indent + "  "
    if t is dict:
        if not value:
            return "{}"
        if any(type(k) is not str for k in value):
            raise _NotPlain
        return "{\n" + ",\n".join(
            f"{inner}{json_string(k, ascii_only=False)}: {_plain_json(v, inner)}"
            for k, v in value.items()) + "\n" + indent + "}"
    if t is list or t is tuple:
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + _plain_json(v, inner) for v in value) + \
            "\n" + indent + "]"
    raise _NotPlain


def json_text(value: Any) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False, default=str)``, byte for byte
    (a test holds the two equal): plain dicts, lists, strings, numbers, booleans and
    None written here, anything else by ``json`` itself."""
    try:
        return _plain_json(value, "")
    except _NotPlain:
        import json

        return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def meta_text(*, stage: str, params: Mapping[str, Any], inputs: Mapping[str, str],
              rows: int | None = None, elapsed: float | None = None,
              extra: Mapping[str, Any] | None = None) -> str:
    """The text of ``NAME.meta.json``: what made the artifact and from what."""
    meta: dict[str, Any] = {
        "tool": "weaklabel",
        "version": __version__,
        "stage": stage,
        "params": dict(params),
        "inputs": dict(inputs),
        "rows": rows,
        "elapsed_s": None if elapsed is None else round(elapsed, 3),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if extra:
        meta.update(extra)
    text = json_text(meta)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name's undecodable bytes, in a summary
        text = json_text(_displayable(meta))
    return text


def _displayable(value: Any) -> Any:
    """``value`` with each string's undecodable bytes (lone surrogates) written ``\\xNN``,
    as every artifact writes a file name (``containment.display_path``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_displayable(k): _displayable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_displayable(v) for v in value]
    return value


def write_text(target: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_target(target) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


# --- the command line's one-line errors --------------------------------------------------


def one_line(message: str) -> str:
    """``Error: …`` on one line, whatever a file name or a cell in the message holds."""
    return "Error: " + message.replace("\r", "\\r").replace("\n", "\\n")


def error_exit(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code a command gives for ``exc``: 2 for a usage error, 3 for
    a review needed, 1 for another :class:`WeaklabelError` or an OS error on a path, 130
    for Ctrl-C; None for anything else (a bug: it keeps its traceback)."""
    from weaklabel.errors import ReviewNeeded, UsageError

    if isinstance(exc, UsageError):
        return str(exc), 2
    if isinstance(exc, ReviewNeeded):
        return str(exc), 3
    if isinstance(exc, WeaklabelError):
        return str(exc), 1
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; re-run the same command to finish", 130
    if isinstance(exc, OSError):  # permissions, a full disk, a path that cannot exist
        where = exc.filename if exc.filename is not None else "a file"
        return (f"cannot read or write {where}: {exc.strerror or exc}; check the "
                "path, its permissions and free space"), 1
    return None


def setup_logging(quiet: bool) -> None:
    """Logs go to stderr; stdout carries results only."""
    import logging
    import sys

    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    # gensim logs every epoch at INFO: useful to its authors, noise to ours.
    logging.getLogger("gensim").setLevel(logging.WARNING)
