"""Containment: a user's image path is a path *under the image root*, as a property.

A relative path that stays inside the root as text (no ``..``) can still leave it: a
folder on the way may be a symbolic link (``IMAGEROOT/weird/etc_dir -> /etc``). So every
stage that opens, links, copies or moves a user's file goes through one of these:

- :func:`open_beneath` opens the path one component at a time, relative to the folder
  opened before it, with ``O_NOFOLLOW``: no symbolic link anywhere on the way is
  followed, so what it opens is under the root whatever the tree does meanwhile.
- :func:`stays_inside` says whether a path, symlinks resolved, is the path it claims
  to be under a resolved root (the check for paths handed to ``rename``).

Only the standard library is used here: the CLI imports it freely.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from collections.abc import Iterator

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) \
    | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_CLOEXEC", 0)


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """``\\xNN`` of a byte that is not UTF-8 on its own, and a lone surrogate:
    compiled on first use, so that ``dedup --exact-only`` (whose paths go through
    :func:`display_path` only) starts without ``re`` and ``enum``."""
    import re

    return re.compile(r"\\x([89a-fA-F][0-9a-fA-F])"), re.compile("[\ud800-\udfff]")


def _byte_or_replacement(m: re.Match[str]) -> str:
    c = ord(m.group(0))
    return f"\\x{c - 0xDC00:02x}" if 0xDC80 <= c <= 0xDCFF else "\ufffd"


def text_form(path: str) -> str:
    """A path as text in every artifact: each byte that is not UTF-8 becomes ``\\xNN``.

    In memory a file name of any bytes is a ``str`` with surrogate escapes
    (``os.fsdecode``), which Parquet, JSON and CSV cannot hold; this form they can, and
    :func:`fs_form` turns it back into the name on disk. Image paths never hold a
    backslash of their own (the posts reader turns ``\\`` into ``/``), so the two
    forms map one to one.

    Example:
        >>> text_form(os.fsdecode(b"a/caf\\xe9.jpg"))
        'a/caf\\\\xe9.jpg'
    """
    if path.isascii():
        return path
    surrogate = _patterns()[1]
    if not surrogate.search(path):
        return path
    # os.fsdecode escapes each undecodable byte as U+DC80..U+DCFF; any other lone
    # surrogate (a JSON "\\ud800") is no byte of a name and becomes U+FFFD.
    return surrogate.sub(_byte_or_replacement, path)


def fs_form(path: str) -> str:
    """The file-system ``str`` of a :func:`text_form` path (surrogate escapes back).

    Example:
        >>> os.fsencode(fs_form("a/caf\\\\xe9.jpg"))
        b'a/caf\\xe9.jpg'
    """
    if "\\x" not in path:
        return path
    return _patterns()[0].sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), path)


class Escape(Exception):  # noqa: N818 - reads as "raise Escape(why)"
    """A path that cannot be used safely; ``str(exc)`` says why, for a rejects file."""


def is_inside(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or below it (both already resolved, absolute)."""
    root = root.rstrip(os.sep) or os.sep
    return path == root or path.startswith(root if root == os.sep else root + os.sep)


def parts_of(rel: str) -> list[str]:
    """The components of a relative POSIX path; :class:`Escape` for an unsafe one."""
    if not rel or rel.startswith("/") or "\x00" in rel:
        raise Escape("not a relative path")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise Escape("path leaves the image root (..)")
    return parts


def stays_inside(root: str, rel: str) -> str | None:
    """The absolute path of ``rel`` under the resolved ``root`` when no component on
    the way is a symbolic link and it stays under the root, else None.

    Example:
        >>> stays_inside("/", "etc") is not None
        True
    """
    try:
        parts = parts_of(rel)
    except Escape:
        return None
    root_real = os.path.realpath(root)
    path = os.path.join(root_real, *parts)
    if os.path.realpath(path) != path or not is_inside(path, root_real):
        return None
    return path


@contextlib.contextmanager
def open_beneath(root: str, rel: str) -> Iterator[tuple[int, str]]:
    """Open the folders of ``rel`` under ``root`` without following any symlink; yield
    ``(fd of the last folder, file name)`` for ``*at`` calls (``dir_fd=``).

    Raises:
        Escape: a component is a symbolic link, not a folder, missing or unreadable.
    """
    parts = parts_of(rel)
    try:
        fd = os.open(os.path.realpath(root), _DIR_FLAGS)
    except OSError as exc:
        raise Escape(f"cannot open the image root ({exc.strerror})") from None
    try:
        for name in parts[:-1]:
            try:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise Escape(_why(exc, f"folder {name!r}")) from None
            os.close(fd)
            fd = nxt
        yield fd, parts[-1]
    finally:
        os.close(fd)


def _why(exc: OSError, what: str) -> str:
    import errno

    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return f"{what} on the way is a symbolic link or not a folder (not followed)"
    if exc.errno == errno.ENOENT:
        return "source image not found"
    return f"cannot open {what}: {exc.strerror}"


def opened_inside(fd: int, path: str, rel: str) -> bool:
    """Whether the file open as ``fd`` is ``rel`` under the root that ``path`` (root +
    rel) names, symlinks resolved: checked on the open descriptor (``/proc/self/fd``),
    so a folder swapped for a symlink after the walk cannot redirect the read.

    True where the system cannot tell (no ``/proc``).
    """
    try:
        actual = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    root = path[: len(path) - len(rel)] if path.endswith(rel) else os.path.dirname(path)
    return actual == os.path.join(_real_root(root or "."), *parts)


@functools.lru_cache(maxsize=16)
def _real_root(root: str) -> str:
    # One image root per run: resolve it once, not once per file (a million files).
    return os.path.realpath(root)


def stat_beneath(dir_fd: int, name: str) -> os.stat_result:
    """``lstat`` of ``name`` in ``dir_fd``; :class:`Escape` unless a regular file."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        raise Escape("source image not found") from None
    except OSError as exc:
        raise Escape(f"cannot stat: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise Escape("a symbolic link (not followed)")
    if not stat.S_ISREG(st.st_mode):
        raise Escape("not a regular file")
    return st


def open_file_beneath(dir_fd: int, name: str) -> int:
    """Open ``name`` in ``dir_fd`` for reading: never a symlink, never a FIFO's block."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise Escape(_why(exc, "the file")) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Escape("not a regular file")
    return fd


# --- what the inventory saw ----------------------------------------------------------------


def inventory_root(ws_root: str) -> str | None:
    """The resolved image root the workspace's inventory is bound to, or None."""
    import json
    import sqlite3

    db_path = os.path.join(ws_root, "inventory.sqlite")
    if not os.path.isfile(db_path):
        return None
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key='root'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    value = json.loads(row[0]) if row else None
    return value if isinstance(value, str) else None


def inventoried_ok(ws_root: str, image_root: str, images: list[str], *,
                   formats: dict[str, str] | None = None,
                   ) -> tuple[dict[str, tuple[int, int, int, int]], dict[str, str]]:
    """For each image path (:func:`text_form`): its identity where the inventory saw it
    as a regular, decodable (``ok``) file under this very root, or why not.

    ``formats``, when given, receives each ``ok`` image's Pillow format (``JPEG``…) as
    the inventory found it from the file's bytes, whatever its extension.

    The inventory (``WORKSPACE/inventory.sqlite``, written by ``purge``/``dedup``) is
    opened read-only; its rows come from a walk that never follows a symlink, so a path
    through a symlinked folder is never in it.

    Returns:
        ``(ok, why)``: image → ``(size, mtime_ns, ino, dev)``; image → reason.

    Raises:
        Escape: no inventory, or one built for another image root.
    """
    import json
    import sqlite3

    db_path = os.path.join(ws_root, "inventory.sqlite")
    if not os.path.isfile(db_path):
        raise Escape(f"{db_path} does not exist")
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise Escape(f"{db_path}: cannot open ({exc})") from None
    try:
        row = db.execute("SELECT value FROM meta WHERE key='root'").fetchone()
        root_real = os.path.realpath(image_root)
        if row is None or row[0] != json.dumps(root_real):
            raise Escape(f"{db_path} was built for another image root")
        ok: dict[str, tuple[int, int, int, int]] = {}
        why: dict[str, str] = {}
        found: dict[str, tuple[object, ...]] = {}
        for i in range(0, len(images), 500):
            part = images[i:i + 500]
            marks = ",".join("?" * len(part))
            for r in db.execute(
                "SELECT path, kind, size, mtime_ns, ino, dev, status, reason, format "  # noqa: S608
                f"FROM files WHERE path IN ({marks})", [os.fsencode(fs_form(p)) for p in part]):
                found[text_form(os.fsdecode(r[0]))] = r[1:]
    except sqlite3.Error as exc:
        raise Escape(f"{db_path}: cannot read ({exc})") from None
    finally:
        db.close()
    for img in images:
        r = found.get(img)
        if r is None:
            why[img] = ("not in the image inventory (missing, behind a symbolic link, or "
                        "new since purge)")
        elif r[0] != "file" or r[5] != "ok":
            why[img] = f"inventory status {r[5] or 'unchecked'}: {r[6] or ''}".rstrip(": ")
        else:
            ok[img] = (int(r[1]), int(r[2]), int(r[3]), int(r[4]))  # type: ignore[call-overload]
            if formats is not None and r[7]:
                formats[img] = str(r[7])
    return ok, why


def display_path(rel: str) -> str:
    """A path for CSV, JSON, file names and the terminal: undecodable bytes become
    ``\\xNN``. The one home of that form (``images.walk.display_path`` re-exports it
    for the image stages' older imports).

    Example:
        >>> display_path(os.fsdecode(b"a/\\xff.jpg"))
        'a/\\\\xff.jpg'
    """
    return os.fsencode(rel).decode("utf-8", "backslashreplace")
