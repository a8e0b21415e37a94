"""Walking an image tree: every path under the root, once, without following symlinks.

Paths are relative to the root, POSIX form. In memory they are ``str`` decoded with the
file-system encoding and ``surrogateescape`` (so non-UTF-8 names round-trip); in SQLite
they are the raw bytes (:func:`path_key`) because SQLite text must be valid UTF-8; in CSV
files they go through :func:`display_path`.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections import namedtuple

from weaklabel.containment import display_path, is_inside  # noqa: F401  display_path: re-export

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~10 ms of start-up that `dedup --exact-only` cannot spare
    from collections.abc import Iterable, Iterator
    from pathlib import Path
    from typing import Any

Entry = namedtuple("Entry", "rel abspath kind size mtime_ns ino dev status reason",
                   defaults=(0, 0, 0, 0, "", ""))
Entry.__doc__ = """One path found by :func:`walk`: ``rel``, ``abspath``, ``kind``, ``size``,
``mtime_ns``, ``ino``, ``dev``, ``status``, ``reason``.

``kind`` is ``file`` (a regular file to examine) or ``problem`` (reported and
skipped: symlink, unreadable folder, FIFO…) with ``status`` and ``reason`` set.
A named tuple, not a dataclass: a walk makes one per file, a million a day.
"""

_ROOT_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = _ROOT_FLAGS | getattr(os, "O_NOFOLLOW", 0)

FileKey = tuple[bytes, int, int, int, int]
"""A regular file found by :func:`walk_keys`: ``(key, size, mtime_ns, ino, dev)``, the key
being the path under the root as raw bytes (the inventory's key, :func:`path_key`)."""

ProblemKey = tuple[bytes, str, str]
"""Anything else :func:`walk_keys` found: ``(key, status, reason)``."""


def _symlink_problem(abspath: bytes, root_real: bytes) -> tuple[str, str]:
    try:
        os.stat(abspath)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "skipped", "symlink loop"
        return "skipped", f"dangling symlink ({exc.strerror})"
    real = os.path.realpath(abspath)
    if not is_inside(os.fsdecode(real), os.fsdecode(root_real)):
        return "skipped", "symlink leaves the image root (not followed)"
    return "skipped", "symlink (not followed; its target is listed under its own path)"


_SPECIAL = ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
            (stat.S_ISBLK, "block device"))


def _skip_ids(skip: Iterable[Path | str]) -> set[tuple[int, int]]:
    ids = set()
    for p in skip:
        try:
            st = os.stat(p)
            ids.add((st.st_dev, st.st_ino))
        except OSError:
            pass
    return ids


class _Changed(Exception):
    """A folder's descriptor is not the folder its parent's listing saw."""

    strerror = None


_CHANGED = "folder changed during the walk (not followed)"


def _path_max(path: bytes) -> int:
    """The longest path, in bytes without the final NUL, the kernel resolves."""
    try:
        return os.pathconf(path, "PC_PATH_MAX") - 1
    except (OSError, ValueError):
        return 4095


def walk_keys(root: Path | str, *, skip: Iterable[Path | str] = ()
              ) -> Iterator[tuple[list[FileKey], list[ProblemKey]]]:
    """Every path under ``root``, one folder at a time, depth first in (byte) name
    order, without following symlinks: per folder, its regular files and its problems.

    The walk behind :func:`walk`, on raw bytes: per folder one ``listdir`` and one
    descriptor, one ``lstat`` per entry relative to it (the kernel resolves one name,
    not the whole path: 9 % of the walk on the bundled example's 7,797 files against
    ``scandir`` and its ``DirEntry.stat``), and a plain tuple per file, no path object or
    string. A folder that became a symlink since its parent was listed, or whose
    descriptor is not the folder the listing saw (a parent swapped for a symlink), is
    not entered: a ``skipped`` problem. A path longer than ``PATH_MAX`` is reported as
    a stat by its path would (``cannot stat: File name too long``), since no later
    stage can open it. Folders in ``skip`` (the workspace and its quarantine) are left
    out; everything else that is not a regular file is a problem, never dropped.
    """
    base = os.fsencode(root)
    top = base if base.endswith(b"/") else base + b"/"
    root_real = os.path.realpath(base)
    skip_ids = _skip_ids(skip)
    # Beyond PATH_MAX a name is still one lstat away from its folder's descriptor, but
    # no later stage can open it by its path: report it as a path-wise stat would.
    path_max = _path_max(base)
    too_long = f"cannot stat: {os.strerror(errno.ENAMETOOLONG)}"
    enc, errs = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    is_lnk, is_dir, is_reg = stat.S_ISLNK, stat.S_ISDIR, stat.S_ISREG
    lstat, fstat, listdir, open_, close = os.lstat, os.fstat, os.listdir, os.open, os.close
    # (folder, (st_dev, st_ino) its parent's listing saw; None for the root)
    stack: list[tuple[bytes, tuple[int, int] | None]] = [(b"", None)]
    while stack:
        rel_dir, seen = stack.pop()
        abs_dir = top + rel_dir if rel_dir else base
        files: list[FileKey] = []
        problems: list[ProblemKey] = []
        add = files.append
        dfd = -1
        try:
            # The root may itself be a symlink (the user named it); below it, none is
            # followed: not the folder itself (O_NOFOLLOW), and not a parent swapped
            # for a symlink since it was listed (the descriptor is not the folder seen).
            dfd = open_(abs_dir, _DIR_FLAGS if rel_dir else _ROOT_FLAGS)
            if seen is not None:
                st = fstat(dfd)
                if (st.st_dev, st.st_ino) != seen:
                    raise _Changed
            names = [n.encode(enc, errs) for n in listdir(dfd)]
        except (OSError, _Changed) as exc:
            if dfd >= 0:
                close(dfd)
            if seen is not None and (isinstance(exc, _Changed)
                                     or exc.errno in (errno.ENOTDIR, errno.ELOOP)):
                problems.append((rel_dir, "skipped", _CHANGED))
            else:
                problems.append((rel_dir or b".", "unreadable",
                                 f"cannot list folder: {exc.strerror or exc}"))
            yield files, problems
            continue
        names.sort()
        prefix = rel_dir + b"/" if rel_dir else b""
        room = path_max - len(top) - len(prefix)  # the longest name a path can still hold
        subdirs = []
        try:
            for name in names:
                if len(name) > room:
                    problems.append((prefix + name, "unreadable", too_long))
                    continue
                try:
                    st = lstat(name, dir_fd=dfd)
                except OSError as exc:
                    problems.append((prefix + name, "unreadable",
                                     f"cannot stat: {exc.strerror or exc}"))
                    continue
                mode = st.st_mode
                if is_reg(mode):
                    add((prefix + name, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev))
                elif is_dir(mode):
                    if (st.st_dev, st.st_ino) in skip_ids:
                        import logging

                        logging.getLogger(__name__).info(
                            "skipping %s: it is the workspace", os.fsdecode(top + prefix + name))
                        continue
                    subdirs.append((prefix + name, (st.st_dev, st.st_ino)))
                elif is_lnk(mode):
                    problems.append((prefix + name,
                                     *_symlink_problem(top + prefix + name, root_real)))
                else:
                    what = next((n for test, n in _SPECIAL if test(mode)), "special file")
                    problems.append((prefix + name, "unreadable",
                                     f"not a regular file ({what})"))
        finally:
            close(dfd)
        yield files, problems
        stack.extend(reversed(subdirs))


def walk(root: Path | str, *, skip: Iterable[Path | str] = ()) -> Iterator[Entry]:
    """Every path under ``root`` as an :class:`Entry`, depth first in name order,
    without following symlinks (:func:`walk_keys`): a folder's files, then its
    problems. Folders in ``skip`` (the workspace and its quarantine) are left out."""
    root_s = os.fspath(root)
    base = os.fsencode(root_s)
    top = base if base.endswith(b"/") else base + b"/"
    fsdecode = os.fsdecode
    for files, problems in walk_keys(root_s, skip=skip):
        for key, size, mtime_ns, ino, dev in files:
            yield Entry(fsdecode(key), fsdecode(top + key), "file", size, mtime_ns,
                        ino, dev)
        for key, status, reason in problems:
            yield Entry(fsdecode(key), root_s if key == b"." else fsdecode(top + key),
                        "problem", status=status, reason=reason)


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
