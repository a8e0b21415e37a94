"""The user dictionary: brand names and neologisms Okt must keep whole, and stop words.

``userdict/*.txt`` holds one word a line (``#`` starts a comment); ``stopwords.txt`` in
the same folder holds words to drop. The dictionary's digest goes into every artifact
that depends on it, so changing a word re-tokenises what it affects.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from weaklabel.errors import WeaklabelError
from weaklabel.text.normalize import fold

log = logging.getLogger(__name__)

STOPWORDS_FILE = "stopwords.txt"


@dataclass(frozen=True)
class UserDict:
    """Words to add to Okt's noun dictionary, and stop words; sorted, NFC."""

    words: tuple[str, ...]
    stopwords: frozenset[str]

    @property
    def digest(self) -> str:
        h = hashlib.sha1()
        for w in self.words:
            h.update(w.encode() + b"\n")
        h.update(b"\0")
        for w in sorted(self.stopwords):
            h.update(w.encode() + b"\n")
        return h.hexdigest()


_COMMENT = re.compile(r"(^|\s)#.*$")
_HASHTAG = re.compile(r"#[^\W\d_][^\s#]*")  # a pasted hashtag, not a '# note'


def _read_words(path: Path) -> list[str]:
    from weaklabel.posts import detect_encoding

    # Notepad's "ANSI" on a Korean Windows is CP949, its "Unicode" UTF-16: read as tables are
    try:
        enc = detect_encoding(path)
    except WeaklabelError:
        raise WeaklabelError(f"{path} is not UTF-8 (nor CP949 or UTF-16) text; save the "
                             "dictionary as UTF-8, one word a line") from None
    text = path.read_text(encoding=enc).lstrip("\ufeff")
    words = []
    for lineno, line in enumerate(text.splitlines(), 1):
        # '#' starts a comment at the start of a line or after a space: C# is a word
        word = _COMMENT.sub("", line).strip()
        if not word:
            tag = line.strip()
            if _HASHTAG.fullmatch(tag):
                log.warning("%s:%d: %r is read as a comment; write the word without '#' "
                            "to add it", path, lineno, tag)
            continue
        if any(c.isspace() for c in word):
            raise WeaklabelError(
                f"{path}:{lineno}: {word!r} contains a space; one word a line "
                "(Okt nouns cannot contain spaces)"
            )
        words.append(unicodedata.normalize("NFC", word))
    return words


def load_userdict(folder: Path | str | None) -> UserDict:
    """Read every ``*.txt`` in ``folder`` (``stopwords.txt`` as stop words).

    ``None`` gives an empty dictionary.

    Raises:
        WeaklabelError: the folder is missing, a file is not UTF-8, a word has a space.
    """
    if folder is None:
        return UserDict((), frozenset())
    folder = Path(folder)
    if not folder.is_dir():
        raise WeaklabelError(
            f"user dictionary folder {folder} does not exist; create it or set "
            "tokenize.userdict in the config"
        )
    words: set[str] = set()
    stop: set[str] = set()
    for path in sorted(folder.glob("*.txt")):
        target = stop if path.name == STOPWORDS_FILE else words
        target.update(_read_words(path))
    # stop words compare with tokens, which are folded alike
    return UserDict(tuple(sorted(words)), frozenset(fold(w) for w in stop))
