"""Walking an image tree: every path under the root, once, without following symlinks.

Paths are relative to the root, POSIX form. In memory they are ``str`` decoded with the
file-system encoding and ``surrogateescape`` (so non-UTF-8 names round-trip); in SQLite
they are the raw bytes (:func:`path_key`) because SQLite text must be valid UTF-8; in CSV
files they go through :func:`display_path`.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from weaklabel.containment import display_path, is_inside  # noqa: F401  display_path: re-export

log = logging.getLogger(__name__)


class Entry(NamedTuple):
    """One path found by :func:`walk`.

    ``kind`` is ``file`` (a regular file to examine) or ``problem`` (reported and
    skipped: symlink, unreadable folder, FIFO…) with ``status`` and ``reason`` set.
    A named tuple, not a dataclass: a walk makes one per file, a million a day.
    """

    rel: str
    abspath: str
    kind: str
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0
    dev: int = 0
    status: str = ""
    reason: str = ""


def _symlink_problem(rel: str, abspath: str, root_real: str) -> Entry:
    try:
        os.stat(abspath)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Entry(rel, abspath, "problem", status="skipped", reason="symlink loop")
        return Entry(rel, abspath, "problem", status="skipped",
                     reason=f"dangling symlink ({exc.strerror})")
    real = os.path.realpath(abspath)
    if not is_inside(real, root_real):
        return Entry(rel, abspath, "problem", status="skipped",
                     reason="symlink leaves the image root (not followed)")
    return Entry(rel, abspath, "problem", status="skipped",
                 reason="symlink (not followed; its target is listed under its own path)")


_SPECIAL = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
            (stat.S_ISBLK, "block device"))


def _skip_ids(skip: Iterable[Path]) -> set[tuple[int, int]]:
    ids = set()
    for p in skip:
        try:
            st = os.stat(p)
            ids.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return ids


def walk(root: Path, *, skip: Iterable[Path] = ()) -> Iterator[Entry]:
    """Every path under ``root``, depth first in name order, without following symlinks.

    Folders in ``skip`` (the workspace and its quarantine) are left out; everything
    else that is not a regular file is yielded as a ``problem`` entry, never dropped.
    """
    root_s = os.fspath(root)
    root_real = os.path.realpath(root_s)
    skip_ids = _skip_ids(skip)
    stack: list[tuple[str, str]] = [("", root_s)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Entry(rel_dir or ".", abs_dir, "problem", status="unreadable",
                        reason=f"cannot list folder: {exc.strerror or exc}")
            continue
        subdirs = []
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError as exc:
                yield Entry(rel, e.path, "problem", status="unreadable",
                            reason=f"cannot stat: {exc.strerror or exc}")
                continue
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                yield _symlink_problem(rel, e.path, root_real)
            elif stat.S_ISDIR(mode):
                if (st.st_dev, st.st_ino) in skip_ids:
                    log.info("skipping %s: it is the workspace", e.path)
                    continue
                subdirs.append((rel, e.path))
            elif stat.S_ISREG(mode):
                yield Entry(rel, e.path, "file", st.st_size, st.st_mtime_ns, st.st_ino,
                            st.st_dev)
            else:
                what = next((n for test, n in _SPECIAL if test(mode)), "special file")
                yield Entry(rel, e.path, "problem", status="unreadable",
                            reason=f"not a regular file ({what})")
        stack.extend(reversed(subdirs))


def open_fd(path: str, rel: str | None = None) -> int:
    """Open a regular file read-only as a raw descriptor, without following a symlink
    swapped in since, at the end or (given ``rel``, the path under the root) on the way.

    Raises:
        OSError: the file cannot be opened, or a folder on the way became a symlink.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    if rel is not None:
        from weaklabel.containment import opened_inside

        if not opened_inside(fd, path, rel):
            os.close(fd)
            raise OSError(errno.ELOOP, "a folder on the way became a symbolic link")
    return fd


def open_regular(path: str, rel: str | None = None) -> Any:
    """:func:`open_fd` as a binary file object."""
    return os.fdopen(open_fd(path, rel), "rb")


def path_key(rel: str) -> bytes:
    """The inventory's key of a path: its raw bytes."""
    return os.fsencode(rel)
