"""The image inventory's SQLite file: its schema, connection and binding to a root.

Standard library only (no pathlib, dataclasses or typing at import): both
:class:`~weaklabel.images.inventory.Inventory` and the lean exact-duplicate path
(:mod:`weaklabel.images.exact`) open the database through :func:`connect` and
:func:`bind`, so they agree on every row and reset.
"""

from __future__ import annotations

import contextlib
import os
import sys
from itertools import chain
from operator import itemgetter

from weaklabel.errors import WeaklabelError
from weaklabel.wsbase import json_string

try:
    # The C module ``sqlite3`` is built on: the package adds the DB-API aliases and the
    # date adapters, whose ``datetime`` import was ~1.5 CPU ms of every ``dedup
    # --exact-only`` run. The classes and exceptions are the very same objects.
    import _sqlite3
except ImportError:  # pragma: no cover - an interpreter whose sqlite3 has no _sqlite3
    import sqlite3 as _sqlite3  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterator, Sequence
    from typing import Any

INVENTORY = "inventory.sqlite"
SCHEMA_VERSION = 8  # 2: JPEG drafts >= hash input; 3: reduce first; 4: no `seen`; 5: 4 KiB partial;
#                    6: a thumbnail beside each hash (near-pair verification); 7: CRC-32 partial;
#                    8: 16-bit samples scaled to 8 bits before the hash (they were clipped)

MIGRATIONS = {
    # 7 -> 8 changed only how 16-bit and float samples are hashed: Pillow reads JPEG, GIF,
    # WebP and BMP as 8-bit pictures only, so their hashes (and every file's digests)
    # hold; the other formats' hashes are made again.
    ("7", "8"): "DELETE FROM hashes WHERE path IN (SELECT path FROM files WHERE format IS "
                "NULL OR format NOT IN ('JPEG', 'MPO', 'GIF', 'WEBP', 'BMP'))",
}
"""From an older schema, the statement that keeps what its rules left valid (the same
tables and columns); any other older schema starts the inventory again."""

# No index on size: keeping one up to date cost a cold run 15 % of its row inserts, and
# sizes are grouped in memory (exact.scan_exact) or by one GROUP BY over the table.
DDL = """
CREATE TABLE IF NOT EXISTS files (
    path BLOB PRIMARY KEY,      -- os.fsencode(relative POSIX path)
    kind TEXT NOT NULL,         -- file | problem
    size INTEGER, mtime_ns INTEGER, ino INTEGER, dev INTEGER,
    sha1 TEXT, partial TEXT,
    width INTEGER, height INTEGER, format TEXT,
    status TEXT, reason TEXT
) WITHOUT ROWID;
DROP INDEX IF EXISTS files_size;
CREATE TABLE IF NOT EXISTS hashes (
    path BLOB NOT NULL, method TEXT NOT NULL,
    hash TEXT, degenerate TEXT,
    thumb BLOB,                 -- THUMB_SIDE^2 grey bytes, beside a hash
    PRIMARY KEY (path, method)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


SETTINGS = """
PRAGMA synchronous=NORMAL;
PRAGMA journal_mode=WAL;
PRAGMA cache_size=-65536;
PRAGMA temp_store=MEMORY;
"""


def connect(path: str) -> sqlite3.Connection:
    """Open (create) the inventory database at ``path`` (WAL, autocommit: every writer
    opens its own transaction).

    Raises:
        WeaklabelError: the file is not an SQLite database.
    """
    db = None
    try:
        db = _sqlite3.connect(path, isolation_level=None)
        # One script: the settings, then the schema. synchronous first, so that a new
        # file's switch to WAL is not synced as a FULL database would be (4 fsyncs).
        # A cold run inserts, then updates by path, a row per file: with SQLite's
        # 2 MiB page cache a 100,000-file table no longer fits and every update
        # misses; the collision queries' GROUP BYs sort in memory, not a temp file.
        db.executescript(SETTINGS + DDL)
    except _sqlite3.DatabaseError as exc:
        # Closed here, not when the traceback goes: the caller may move the file aside
        # and open a new one at its name while this error is still being handled.
        if db is not None:
            db.close()
        raise WeaklabelError(f"{path}: not a usable inventory ({exc}); delete it to rebuild"
                             ) from exc
    return db


def is_whole(db: sqlite3.Connection) -> bool:
    """Whether every page of the open inventory is sound (``PRAGMA quick_check``: ~0.03
    CPU s for 100,000 rows); a page a torn write damaged is found here, not half-way
    through a scan. Damage that stops the check itself raises (:func:`damaged` says
    so)."""
    verdict = db.execute("PRAGMA quick_check").fetchone()
    return verdict is not None and verdict[0] == "ok"


def damaged(exc: BaseException | None) -> bool:
    """Whether an error says the inventory file is not (or no longer) a whole SQLite
    database (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``): a torn or overwritten cache, to
    be set aside and rebuilt (:func:`set_aside`), never trusted. A locked or
    read-only database is not damaged."""
    if isinstance(exc, WeaklabelError):
        exc = exc.__cause__
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, _sqlite3.DatabaseError) and code is not None and code & 0xFF in (
        11, 26)


ASIDE_ORDER = ("-wal", "-shm", "")
"""The order :func:`set_aside` moves an inventory's files in: its WAL files before the
database, so that a crash between two moves leaves at the live name either the database
with its own WAL, or the database alone (a checkpointed state), never a WAL that a new
database would replay."""


def set_aside(path: str) -> str:
    """Move a damaged inventory and its WAL files to ``PATH.damaged`` (replacing an
    older one; never deleted: a person may want to look), so that the next
    :func:`connect` starts a new one. Returns the new name.

    The older copy goes first, whole, then :data:`ASIDE_ORDER`: at neither name can a
    crash pair the database of one with the WAL of another.
    """
    import logging

    aside = path + ".damaged"
    for suffix in ASIDE_ORDER:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside + suffix)
    for suffix in ASIDE_ORDER:
        with contextlib.suppress(FileNotFoundError):
            os.replace(path + suffix, aside + suffix)
    logging.getLogger("weaklabel.images.inventory").warning(
        "%s is damaged (a torn write?); moved to %s and rebuilt from the images", path,
        aside)
    return aside


INSERT_BATCH = 100
"""Rows one ``INSERT`` statement carries (:func:`insert_rows`): 100 rows of up to 7 values
stay under the 999 bound parameters an SQLite before 3.32 allows."""


def insert_rows(db: sqlite3.Connection, head: str, values: str,
                rows: Sequence[tuple[Any, ...]]) -> None:
    """``INSERT`` ``rows`` (plain tuples of one width, each filling ``values``'
    placeholders, a ``bytes`` path key first) with :data:`INSERT_BATCH` rows a
    statement: ``head`` is the statement up to ``VALUES``, ``values`` one row's
    ``(?, …)``.

    One ``executemany`` step per row costs the sqlite3 module's bookkeeping (reset,
    clear, bind, step) every row; a statement of many rows pays it once per batch:
    7,797 new inventory rows in 23 ms instead of 33 (median of 21, interleaved). The
    keys go in as ``bytearray``: the module binds a ``bytes`` value only after looking
    for an adapter of its type (a tuple, a dict and two attribute look-ups, ~0.3 µs),
    a ``bytearray`` (like an int or a str) straight away, as the same BLOB (7,797 rows
    in 6.8 ms instead of 7.6, the conversion included). Each batch is flattened as
    SQLite takes it, so a million rows are not held a second time as one flat list.
    """
    if not rows:
        return
    width = len(rows[0])
    assert type(rows[0][0]) is bytes, "the path key goes in as bytes (path_key)"
    n = INSERT_BATCH
    full = len(rows) - len(rows) % n

    def batches() -> Iterator[list[Any]]:
        # One batch flattened at a time: a million rows never exist twice over.
        for i in range(0, full, n):
            part = rows[i:i + n]
            yield list(chain.from_iterable(zip(
                map(bytearray, map(itemgetter(0), part)),
                *(map(itemgetter(k), part) for k in range(1, width)), strict=True)))

    if full:
        db.executemany(f"{head} VALUES {','.join([values] * n)}", batches())
    if full < len(rows):
        db.executemany(f"{head} VALUES {values}",
                       [(bytearray(r[0]), *r[1:]) for r in rows[full:]])


def get_meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else row[0]


def set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def bind(db: sqlite3.Connection, root_real: str, max_pixels: int | None,
         formats: tuple[str, ...] | None) -> None:
    """Reset what no longer holds: another root or schema (every row goes), another
    decode limit or wanted formats (every decode status and hash goes).

    ``max_pixels`` and ``formats`` None: the caller judges no file (``dedup
    --exact-only`` reads bytes only), so the statuses stay as the settings they were
    judged under (recorded here) left them; the next run that judges files resets them
    if its settings differ.
    """
    version = get_meta(db, "schema")
    migrate = MIGRATIONS.get((version or "", str(SCHEMA_VERSION)))
    if version is not None and version != str(SCHEMA_VERSION) and migrate is None:
        # Columns may differ between versions; the rows are reset below anyway.
        db.execute("DROP TABLE IF EXISTS hashes")
        db.executescript(DDL)
    db.execute("BEGIN")
    old_root = get_meta(db, "root")
    root_json = json_string(root_real, ascii_only=True)  # json.dumps(root_real)
    if old_root == root_json and migrate is not None:
        import logging

        logging.getLogger("weaklabel.images.inventory").info(
            "inventory of %s: schema %s to %s, the hashes its rules changed are made "
            "again", root_real, version, SCHEMA_VERSION)
        db.execute(migrate)
    elif version != str(SCHEMA_VERSION) or old_root != root_json:
        if old_root is not None:
            import json
            import logging

            if old_root != root_json:
                logging.getLogger("weaklabel.images.inventory").warning(
                    "inventory was built for %s; starting a new one for %s",
                    json.loads(old_root), root_real)
            else:  # same root: the rows were made by another version's rules
                logging.getLogger("weaklabel.images.inventory").warning(
                    "inventory of %s was built by another weaklabel (schema %s, now %s); "
                    "every file is read again", root_real, version, SCHEMA_VERSION)
        db.execute("DELETE FROM files")
        db.execute("DELETE FROM hashes")
    if max_pixels is not None and formats is not None:
        import json

        wanted = json.dumps(sorted(formats))
        if get_meta(db, "max_pixels") != str(max_pixels) or get_meta(db, "formats") != wanted:
            db.execute("UPDATE files SET status=NULL, reason=NULL WHERE kind='file'")
            db.execute("DELETE FROM hashes")
        set_meta(db, "formats", wanted)
        set_meta(db, "max_pixels", str(max_pixels))
    set_meta(db, "schema", str(SCHEMA_VERSION))
    set_meta(db, "root", root_json)
    db.execute("COMMIT")


class NoBar:
    """What a quiet run counts progress with: nothing (and no tqdm to import)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_bar(quiet: bool, **kw: Any) -> Any:
    """A tqdm bar on stderr, or :class:`NoBar` when ``quiet``."""
    if quiet:
        return NoBar()
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=None, **kw)


def inventory_path(ws_root: str) -> str:
    """``WORKSPACE/inventory.sqlite``, the workspace folder created if need be."""
    os.makedirs(ws_root, exist_ok=True)
    return os.path.join(ws_root, INVENTORY)
