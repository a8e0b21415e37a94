"""Reading and validating the posts table (CSV, JSON lines or Parquet), in chunks.

The user's column names map onto the logical columns ``post_id, caption, images, likes,
comments, created_at`` (:class:`~weaklabel.config.ColumnsConfig`). Only ``post_id`` and
``caption`` are required: a post without images, likes or comments is valid. Images are
a JSON list or a ``|``-separated string of paths relative to the image root, or come
from a separate link table ``post_id,image``. Internally the post→image relation is one
long table (``post_images``).
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import os
import posixpath
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weaklabel.config import PostsConfig
from weaklabel.errors import WeaklabelError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
LOGICAL = ("post_id", "caption", "images", "likes", "comments", "created_at")
REQUIRED = ("post_id", "caption")
_MAX_COUNT = 2**63 - 1
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_INT_RE = re.compile(r"^\s*\+?(\d{1,3}(,\d{3})+|\d+)(\.0*)?\s*$")


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The table format, from ``fmt`` or the file name; a clear error otherwise."""
    if fmt:
        if fmt not in set(FORMATS.values()):
            raise WeaklabelError(
                f"unknown posts format {fmt!r}; use one of csv, tsv, jsonl, parquet"
            )
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for s in reversed(suffixes):
        if s in FORMATS:
            return FORMATS[s]
    raise WeaklabelError(
        f"{path}: cannot tell the table format from the name; "
        "name it .csv/.jsonl/.parquet or pass --format"
    )


def detect_encoding(path: Path, *, block: int = 1 << 20,
                    columns: Sequence[str] = ()) -> str:
    """UTF-8 (with or without BOM) or CP949, decided by decoding the whole file;
    UTF-16 or UTF-32 by their byte-order mark, or without one when the header decodes
    to text with no NUL (to the ``columns`` when given: that is proof).

    Raises:
        WeaklabelError: naming the byte offset and line when neither decodes, or a file
            of NULs that no UTF-16/32 reading makes text of.
    """
    with open(path, "rb") as f:
        head = f.read(4096)
    bad = _not_text(path, head)
    if bad is not None:
        raise bad
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        # before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one
        log.info("%s: read as UTF-32 (it starts with a UTF-32 byte-order mark)", path)
        return "utf-32"
    wide = _bomless_wide(path, head, columns)
    if wide is not None:
        log.info("%s: read as %s (its header is %s text without a byte-order mark)",
                 path, wide.upper(), wide.upper())
        return wide
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # "Unicode text" from Excel or Notepad: the BOM says which, the codec strips it.
        log.info("%s: read as UTF-16 (it starts with a UTF-16 byte-order mark)", path)
        return "utf-16"
    enc = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    err = _first_decode_error(path, enc, block)
    if err is None:
        return enc
    if _first_decode_error(path, "cp949", block) is None:
        log.info("%s: read as CP949 (it is not UTF-8)", path)
        return "cp949"
    offset, line = err
    raise WeaklabelError(
        f"{path}: line {line} (byte {offset}) is neither UTF-8 nor CP949; "
        "pass --encoding NAME (e.g. euc-kr, utf-16) or re-save the file as UTF-8"
    )


def _bomless_wide(path: Path, head: bytes, columns: Sequence[str]) -> str | None:
    """UTF-16/32 (LE or BE) written without a byte-order mark: the one whose header
    line holds the ``columns`` (proof), else the one a NUL-heavy header line reads as;
    ``None`` for UTF-8 or CP949 text (a stray NUL in a caption is no reason).

    Raises:
        WeaklabelError: the header line is NUL-heavy but no such reading makes text of it.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    end = head.find(b"\n")
    first = head[:end] if end > 0 else head[:256]
    # ASCII in UTF-16-LE puts its NULs at odd offsets, in BE at even ones; read the
    # other way round it decodes to CJK characters with no NUL, so the parity decides.
    odd, even = first[1::2].count(0), first[0::2].count(0)
    order = ["utf-32-le", "utf-32-be"] + (["utf-16-le", "utf-16-be"] if odd >= even
                                          else ["utf-16-be", "utf-16-le"])
    texts: list[tuple[str, str]] = []
    for enc in order:
        try:
            text = codecs.getincrementaldecoder(enc)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        line = text.split("\n")[0]
        if line.strip() and "\x00" not in line:
            texts.append((enc, line))
    for enc, line in texts:
        if columns and all(c in line for c in columns):
            return enc
    if not first or first.count(0) * 4 < len(first):
        return None
    if texts:
        return texts[0][0]
    raise WeaklabelError(
        f"{path}: the header is full of NUL bytes but reads as no UTF-16 or UTF-32 text; "
        "re-save the file as UTF-8")


# Magic numbers of files a person may have renamed or exported by mistake as .csv.
_NOT_TEXT = ((b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook?)",
              "in Excel use Save As → 'CSV UTF-8'"),
             (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook",
              "in Excel use Save As → 'CSV UTF-8'"),
             (b"PAR1", "a Parquet file", "name it .parquet or pass --format parquet"),
             (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip)"),
             (b"SQLite format 3\x00", "an SQLite database", "export the table as CSV"))


def _not_text(path: Path, head: bytes) -> WeaklabelError | None:
    for magic, what, fix in _NOT_TEXT:
        if head.startswith(magic):
            return WeaklabelError(f"{path}: this is {what}, not a text table; {fix}")
    return None


_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\r?\n?$")
"""Excel's separator hint, a first line ``sep=;``."""


def _sep_hint(path: Path, enc: str) -> str | None:
    """The separator a first line ``sep=X`` (Excel's hint) names, else None."""
    try:
        with open(path, encoding=enc, newline="") as f:
            m = _SEP_LINE.match(f.readline(64))
    except (UnicodeDecodeError, LookupError):
        return None
    return m.group(1) if m else None


def _header_separator(path: Path, enc: str, sep: str, wanted: Sequence[str],
                      mapped: Sequence[str]) -> str:
    """The separator of a CSV's header: ``sep`` unless the header read with ``sep``
    lacks one of the ``wanted`` (required) columns and read with a comma, tab, ``;`` or
    ``|`` has them all (Excel in many locales saves ``;``; a ``.tsv`` may hold commas).
    Decided by parsing the header, quotes and all, not by which character it holds.

    Raises:
        WeaklabelError: one of the ``mapped`` columns (those weaklabel reads) is named
            twice in the header (pandas would read the first and rename the other).
    """
    import csv

    try:
        with open(path, encoding=enc, newline="") as f:
            header = ""
            # pandas skips blank lines before the header; the reader skips a sep= line
            while not header.strip() or _SEP_LINE.match(header):
                header = f.readline(1 << 16)
                if not header:
                    break
    except (UnicodeDecodeError, LookupError):
        return sep  # the reader names the decoding problem

    def names(by: str) -> list[str]:
        return next(csv.reader([header.lstrip("\ufeff").rstrip("\r\n")], delimiter=by), [])

    found = names(sep)
    if not set(wanted) <= set(found):
        for other in (",", "\t", ";", "|"):
            if other != sep and set(wanted) <= set(names(other)):
                log.info("%s: the header read as %r-separated holds the columns", path, other)
                sep, found = other, names(other)
                break
    dup = next((n for k, n in enumerate(found) if n in mapped and n in found[:k]), None)
    if dup is not None:
        raise WeaklabelError(
            f"{path}: column {dup!r} appears twice in the header; rename or drop one")
    return sep

def _first_decode_error(path: Path, enc: str, block: int) -> tuple[int, int] | None:
    skip = 0
    if codecs.lookup(enc).name == "utf-8-sig":
        # Skip the BOM ourselves: utf-8-sig's decoder reports error positions without it.
        enc, skip = "utf-8", len(codecs.BOM_UTF8)
    dec = codecs.getincrementaldecoder(enc)(errors="strict")
    offset = skip
    line = 1
    with open(path, "rb") as f:
        f.seek(skip)
        while True:
            data = f.read(block)
            final = not data
            try:
                dec.decode(data, final=final)
            except UnicodeDecodeError as exc:
                pos = max(0, exc.start - len(dec.getstate()[0]))
                return offset + pos, line + data[:pos].count(b"\n")
            if final:
                return None
            offset += len(data)
            line += data.count(b"\n")


@dataclass
class _Reader:
    path: Path
    cfg: PostsConfig
    chunk_size: int

    def chunks(self) -> Iterator[pd.DataFrame]:
        fmt = detect_format(self.path, self.cfg.format)
        if fmt in ("csv", "tsv"):
            yield from self._csv(sep="\t" if fmt == "tsv" else ",")
        elif fmt == "jsonl":
            yield from self._jsonl()
        else:
            yield from self._parquet()

    def _csv(self, sep: str) -> Iterator[pd.DataFrame]:
        import pandas as pd

        cols = self.cfg.columns
        enc = self.cfg.encoding or detect_encoding(
            self.path, columns=[getattr(cols, c) for c in REQUIRED])
        hint = _sep_hint(self.path, enc)
        sep = _header_separator(self.path, enc, hint or sep,
                                [getattr(cols, c) for c in REQUIRED],
                                [getattr(cols, c) for c in LOGICAL])
        try:
            reader = pd.read_csv(
                self.path, sep=sep, encoding=enc, dtype=str, keep_default_na=False,
                chunksize=self.chunk_size, on_bad_lines="error",
                skiprows=1 if hint else None,
            )
            yield from reader
        except pd.errors.EmptyDataError as exc:
            raise WeaklabelError(f"{self.path}: the file is empty (no header row)") from exc
        except pd.errors.ParserError as exc:
            raise WeaklabelError(
                f"{self.path}: malformed CSV ({str(exc).strip()}); check quoting of captions"
            ) from exc
        except (UnicodeDecodeError, LookupError) as exc:
            raise self._decoding_error(exc, enc) from exc

    def _decoding_error(self, exc: Exception, enc: str) -> WeaklabelError:
        if isinstance(exc, UnicodeDecodeError):
            return WeaklabelError(
                f"{self.path}: cannot decode as {enc} ({exc.reason}); pass --encoding")
        return WeaklabelError(f"unknown encoding {enc!r}; use e.g. utf-8, cp949")

    def _jsonl(self) -> Iterator[pd.DataFrame]:
        import pandas as pd

        enc = self.cfg.encoding or detect_encoding(self.path)
        rows: list[dict[str, Any]] = []
        try:
            with open(self.path, encoding=enc) as f:
                if self._starts_with(f, "["):
                    yield from self._json_array(f)
                    return
                for lineno, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        spread = lineno == 1 and line.strip() == "{"
                        raise WeaklabelError(
                            f"{self.path}:{lineno}: invalid JSON ({exc.msg}); "
                            + ("one object spans several lines (pretty-printed JSON): write "
                               "one object per line, e.g. jq -c . FILE > posts.jsonl"
                               if spread else "each line must be one JSON object")
                        ) from exc
                    if lineno == 1 and isinstance(obj, dict) and len(obj) == 1:
                        (key, inner), = obj.items()
                        if isinstance(inner, list) and inner and isinstance(inner[0], dict):
                            raise WeaklabelError(
                                f"{self.path}: one object holding the posts under {key!r}; "
                                f"give the list, one post per line: jq -c '.{key}[]' FILE "
                                "> posts.jsonl")
                    if not isinstance(obj, dict):
                        raise WeaklabelError(
                            f"{self.path}:{lineno}: expected a JSON object, got "
                            f"{type(obj).__name__}"
                        )
                    rows.append(_valid_text(obj))
                    if len(rows) >= self.chunk_size:
                        yield pd.DataFrame(rows)
                        rows = []
        except (UnicodeDecodeError, LookupError) as exc:
            raise self._decoding_error(exc, enc) from exc
        if rows:
            yield pd.DataFrame(rows)

    @staticmethod
    def _starts_with(f: Any, char: str) -> bool:
        """Whether the text file ``f`` starts with ``char`` (after spaces and a BOM);
        ``f`` is left at its start."""
        head = f.read(4096).lstrip("\ufeff \t\r\n")
        f.seek(0)
        return head.startswith(char)

    def _json_array(self, f: Any) -> Iterator[pd.DataFrame]:
        """A JSON array of post objects (what most tools save as ``.json``), read whole."""
        import pandas as pd

        try:
            data = json.loads(f.read().lstrip("\ufeff"))
        except json.JSONDecodeError as exc:
            raise WeaklabelError(
                f"{self.path}:{exc.lineno}: invalid JSON ({exc.msg}); a .json table is one "
                "array of objects or one object per line") from exc
        bad = next((i for i, o in enumerate(data) if not isinstance(o, dict)), None)
        if bad is not None:
            raise WeaklabelError(
                f"{self.path}: item {bad + 1} of the array is a {type(data[bad]).__name__}, "
                "not an object; every post is one object {\"post_id\": …, \"caption\": …}")
        for start in range(0, len(data), self.chunk_size):
            yield pd.DataFrame([_valid_text(o) for o in data[start:start + self.chunk_size]])

    def _parquet(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
            raise WeaklabelError(f"{self.path}: not a readable Parquet file ({exc})") from exc
        for batch in pf.iter_batches(batch_size=self.chunk_size):
            yield batch.to_pandas()


def _valid_text(v: Any) -> Any:
    """JSON may hold lone surrogates (``"\\udcff"``) that no table can store: each
    becomes the ``\\xNN`` text form of the byte it escapes (a file name of any bytes)
    or U+FFFD."""
    from weaklabel.containment import text_form

    if isinstance(v, str):
        return text_form(v)
    if isinstance(v, list):
        return [_valid_text(x) for x in v]
    if isinstance(v, dict):
        return {_valid_text(k): _valid_text(x) for k, x in v.items()}
    return v


def _is_missing(v: Any) -> bool:
    """None, NaN, or pandas' NA/NaT (nullable Parquet columns are read as ``pd.NA``)."""
    if v is None:
        return True
    if isinstance(v, float):
        return math.isnan(v)
    return type(v).__name__ in ("NAType", "NaTType")


def _parse_count(value: Any, col: str, row: int, where: Path) -> int | None:
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        raise WeaklabelError(f"{where}: row {row}: {col} must be a whole number, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    else:
        text = str(value).strip()
        if text == "" or text.lower() in ("nan", "null", "none"):
            return None
        if not _INT_RE.match(text):
            raise WeaklabelError(
                f"{where}: row {row}: {col} must be a whole number, got {text!r}; "
                "fix the cell or leave it empty"
            )
        n = int(text.split(".")[0].replace(",", "").replace("+", ""))
    if n < 0:
        raise WeaklabelError(f"{where}: row {row}: {col} is negative ({n}); counts are ≥ 0")
    if n > _MAX_COUNT:
        # The column is stored as int64: a larger number would overflow in pandas.
        raise WeaklabelError(
            f"{where}: row {row}: {col} is {n}, more than a count can be "
            f"({_MAX_COUNT:,}); fix the cell or leave it empty")
    return n


def normalize_image_path(raw: str | bytes, *, row: int, where: Path) -> str:
    """A POSIX path relative to the image root; reject absolute or escaping paths.

    File names of any bytes are kept: bytes (a Parquet binary cell) and surrogate
    escapes (JSON ``"\\udcff"``) become the ``\\xNN`` text form every artifact uses
    (:func:`weaklabel.containment.text_form`), and ``\\xNN`` written in a table (as
    ``purge.csv`` shows such names) stays a byte, not a Windows separator.
    """
    from weaklabel.containment import text_form

    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    raw = text_form(raw)
    p = re.sub(r"\\(?!x[89a-fA-F][0-9a-fA-F])", "/", raw.strip())
    # a drive letter first: "C:\\photos\\a.jpg" and "c://x.jpg" are Windows paths, not URLs
    if p.startswith("/") or re.match(r"^[A-Za-z]:/", p):
        raise WeaklabelError(
            f"{where}: row {row}: image path {raw!r} is absolute; "
            "give paths relative to the image root"
        )
    if _URL_RE.match(p):
        # normpath would fold "https://cdn/a.jpg" into the relative "https:/cdn/a.jpg".
        raise WeaklabelError(
            f"{where}: row {row}: image path {raw!r} is a URL; download the images under "
            "one root (or set images.root to its s3:// prefix) and give paths relative "
            "to it")
    norm = posixpath.normpath(p)
    if norm == ".." or norm.startswith("../"):
        raise WeaklabelError(
            f"{where}: row {row}: image path {raw!r} escapes the image root; "
            "paths must stay inside it"
        )
    return norm


def split_images(value: Any, sep: str, *, row: int, where: Path) -> list[str]:
    """Parse an images cell: a list, a JSON list string, or ``sep``-separated paths."""
    if _is_missing(value):
        return []
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        items: list[str | bytes] = [v if isinstance(v, (str, bytes)) else str(v)
                                    for v in value if v is not None]
    else:
        text = str(value).strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise WeaklabelError(
                    f"{where}: row {row}: images cell looks like a JSON list but is not "
                    f"valid JSON ({exc.msg})"
                ) from exc
            if not isinstance(parsed, list):
                raise WeaklabelError(f"{where}: row {row}: images must be a list of paths")
            items = [str(v) for v in parsed if v is not None]
        else:
            items = list(text.split(sep))
    return [normalize_image_path(i, row=row, where=where) for i in items
            if (i.strip() if isinstance(i, (str, bytes)) else str(i).strip())]


def _text_cell(v: Any, col: str, row: int, where: Path) -> str:
    """A cell as text: a Parquet binary cell decoded as UTF-8, not its
    ``b'\\xeb…'`` repr; a list cell (JSON, Parquet) its items one per line, not
    ``['a' 'b']``.

    Raises:
        WeaklabelError: bytes that are not UTF-8 (a short CP949 cell may pass for
            UTF-8, so one cell cannot tell which it is).
    """
    if isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise WeaklabelError(
                f"{where}: row {row}: {col} is bytes that are not UTF-8 text "
                f"({data[:12]!r}…); write the column as UTF-8 strings") from None
    if isinstance(v, (list, tuple)) or (hasattr(v, "tolist") and not isinstance(v, str)):
        items = v.tolist() if hasattr(v, "tolist") else v
        if isinstance(items, list):
            return "\n".join(_text_cell(x, col, row, where) for x in items
                             if not _is_missing(x))
    return str(v)


def _loose_columns(raw: pd.DataFrame, names: Sequence[str], where: Path, *, say: bool
                   ) -> pd.DataFrame:
    """``raw`` with each of ``names`` it lacks taken from the one column that differs
    from it only by surrounding spaces or case (``post_id, caption`` typed by hand, an
    export's ``Post_ID``); a name two columns could mean stays missing."""
    have = [str(c) for c in raw.columns]
    rename: dict[Any, str] = {}
    for name in dict.fromkeys(names):
        if name in have:
            continue
        loose = [c for c, h in zip(raw.columns, have, strict=True)
                 if h.strip().casefold() == name.strip().casefold() and c not in rename]
        if len(loose) == 1 and name not in rename.values():
            rename[loose[0]] = name
    if rename:
        if say:
            log.info("%s: read column %s as %s", where,
                     ", ".join(repr(str(c)) for c in rename), ", ".join(rename.values()))
        raw = raw.rename(columns=rename)
    return raw


def column_fix(logical: str) -> str:
    """How to map a posts column: in the config for every command that reads the table
    (``build``, ``dedup --posts`` …), with ``--col`` only on ``tokenize``, which has it."""
    return (f"map yours with posts.columns.{logical}: NAME in the config "
            f"(or --col {logical}=NAME on weaklabel tokenize)")


def normalize_chunk(
    raw: pd.DataFrame, cfg: PostsConfig, *, first_row: int, where: Path, has_links: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map columns and validate one chunk; returns ``(posts, post_images)``.

    ``first_row`` is the 1-based data-row number of the chunk's first row, for messages.
    """
    import pandas as pd

    cols = cfg.columns
    mapping = {logical: getattr(cols, logical) for logical in LOGICAL}
    raw = _loose_columns(raw, list(mapping.values()), where, say=first_row == 1)
    for logical in REQUIRED:
        if mapping[logical] not in raw.columns:
            avail = ", ".join(str(c) if str(c).isprintable() and str(c) == str(c).strip()
                              else repr(c) for c in raw.columns[:12])
            raise WeaklabelError(
                f"{where}: missing column {mapping[logical]!r} ({logical}); the table has: "
                f"{avail}; {column_fix(logical)}"
            )
    n = len(raw)
    rows = range(first_row, first_row + n)
    ids = raw[mapping["post_id"]].tolist()
    again = next((r for r, i, c in zip(rows, ids, raw[mapping["caption"]].tolist(),
                                       strict=True)
                  if i == mapping["post_id"] and c == mapping["caption"]), None)
    if again is not None:  # `cat day1.csv day2.csv`: the second header became a post
        raise WeaklabelError(
            f"{where}: row {again} repeats the header ({mapping['post_id']}, "
            f"{mapping['caption']}, …): tables concatenated with their headers? delete "
            "that line")
    out_ids: list[str] = []
    for r, v in zip(rows, ids, strict=True):
        s = "" if _is_missing(v) else _text_cell(v, "post_id", r, where).strip()
        if isinstance(v, float) and not math.isnan(v) and v.is_integer():
            s = str(int(v))
        if not s:
            raise WeaklabelError(f"{where}: row {r}: post_id is empty; every post needs an id")
        out_ids.append(s)
    caps = [
        "" if _is_missing(c) else _text_cell(c, "caption", r, where)
        for r, c in zip(rows, raw[mapping["caption"]].tolist(), strict=True)
    ]

    def counts(logical: str) -> list[int | None]:
        name = mapping[logical]
        if name not in raw.columns:
            return [None] * n
        return [_parse_count(v, name, r, where) for r, v in zip(rows, raw[name], strict=True)]

    created: list[str | None] = [None] * n
    if mapping["created_at"] in raw.columns:
        created = [
            None if _is_missing(v) or str(v) == ""
            else str(v)
            for v in raw[mapping["created_at"]].tolist()
        ]
    posts = pd.DataFrame({
        "post_id": out_ids,
        "caption": caps,
        "likes": pd.array(counts("likes"), dtype="Int64"),
        "comments": pd.array(counts("comments"), dtype="Int64"),
        "created_at": created,
    })
    img_ids: list[str] = []
    img_paths: list[str] = []
    if not has_links and mapping["images"] in raw.columns:
        for r, pid, cell in zip(rows, out_ids, raw[mapping["images"]].tolist(), strict=True):
            seen: set[str] = set()
            for p in split_images(cell, cfg.image_sep, row=r, where=where):
                if p not in seen:
                    seen.add(p)
                    img_ids.append(pid)
                    img_paths.append(p)
    images = pd.DataFrame({"post_id": img_ids, "image": img_paths}, dtype=object)
    return posts, images


def iter_posts(
    path: Path, cfg: PostsConfig, *, chunk_size: int = 20_000
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    """Stream ``(posts, post_images)`` chunks, validated; memory stays flat.

    Raises:
        WeaklabelError: missing file or column, bad encoding, bad cell, duplicate post_id,
            an empty table.
    """
    path = Path(path)
    check_table_file(path, "posts table")
    has_links = cfg.links is not None
    seen: set[str] = set()
    first = 1
    for raw in _Reader(path, cfg, chunk_size).chunks():
        posts, images = normalize_chunk(
            raw, cfg, first_row=first, where=path, has_links=has_links
        )
        if posts.empty:
            continue  # a header-only CSV gives one empty chunk: checked, nothing to yield
        for i, pid in enumerate(posts["post_id"].tolist()):
            if pid in seen:
                raise WeaklabelError(
                    f"{path}: row {first + i}: post_id {pid!r} appears twice; ids must be unique"
                )
            seen.add(pid)
        first += len(posts)
        yield posts, images
    if first == 1:
        raise WeaklabelError(f"{path}: the posts table has no rows")
    if has_links:
        assert cfg.links is not None
        yield _empty_posts(), read_links(Path(cfg.links), seen)


def check_table_file(path: Path, what: str) -> None:
    """A table must be a regular file: a folder, a FIFO or ``/dev/zero`` would hang or
    read forever.

    Raises:
        WeaklabelError: missing, a folder, or not a regular file (naming which).
    """
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise WeaklabelError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise WeaklabelError(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise WeaklabelError(f"{what} {path} is a folder; give the table file")
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise WeaklabelError(f"{what} {path} is {kind}, not a file; save the table to a "
                             "file and give its path")


def _empty_posts() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({
        "post_id": pd.Series([], dtype=object), "caption": pd.Series([], dtype=object),
        "likes": pd.array([], dtype="Int64"), "comments": pd.array([], dtype="Int64"),
        "created_at": pd.Series([], dtype=object),
    })


def read_table_csv(path: Path, *, what: str, encoding: str | None = None,
                   dtype: Any = str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """Read a small CSV a person gave (gold labels, a link table, a labels file) or an
    artifact; any decoding or parsing problem becomes one line naming the file.

    ``columns``: the ones the caller needs; they pick the encoding and separator (``;``,
    tab or ``|``) as for a posts table.

    Raises:
        WeaklabelError: missing, empty, undecodable or malformed file.
    """
    import pandas as pd

    path = Path(path)
    check_table_file(path, what)
    enc = encoding or detect_encoding(path, columns=columns)
    sep = _header_separator(path, enc, ",", columns, columns) if columns else ","
    try:
        return pd.read_csv(path, dtype=dtype, keep_default_na=False, encoding=enc, sep=sep)
    except pd.errors.EmptyDataError as exc:
        raise WeaklabelError(f"{path}: the {what} is empty (no header row)") from exc
    except pd.errors.ParserError as exc:
        raise WeaklabelError(
            f"{path}: malformed CSV ({str(exc).strip()}); check the {what}'s quoting and "
            "commas") from exc
    except (UnicodeDecodeError, LookupError) as exc:
        raise WeaklabelError(f"{path}: cannot decode the {what} as {enc} ({exc})") from exc


def read_links(path: Path, known: set[str]) -> pd.DataFrame:
    """Read a link table ``post_id,image``; every post_id must be a known post."""
    import pandas as pd

    df = read_table_csv(path, what="link table", columns=("post_id", "image"))
    for col in ("post_id", "image"):
        if col not in df.columns:
            raise WeaklabelError(f"{path}: missing column {col!r}; a link table is post_id,image")
    out_ids, out_imgs = [], []
    for i, (pid, img) in enumerate(zip(df["post_id"], df["image"], strict=True), 1):
        pid = pid.strip()
        if pid not in known:
            raise WeaklabelError(f"{path}: row {i}: post_id {pid!r} is not in the posts table")
        if img.strip():
            out_ids.append(pid)
            out_imgs.append(normalize_image_path(img, row=i, where=path))
    out = pd.DataFrame({"post_id": out_ids, "image": out_imgs}, dtype=object)
    return out.drop_duplicates().reset_index(drop=True)


def read_posts(path: Path, cfg: PostsConfig | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The whole posts table as ``(posts, post_images)`` (for tables that fit in memory)."""
    import pandas as pd

    cfg = cfg or PostsConfig()
    parts = list(iter_posts(path, cfg))
    posts = pd.concat([p for p, _ in parts], ignore_index=True)
    images = pd.concat([i for _, i in parts], ignore_index=True)
    return posts, images
