"""Tokenizers behind one interface, and the one place Okt's JVM is started.

A tokenizer turns normalised captions into lists of kept words. ``okt`` (KoNLPy's Open
Korean Text) is the default; ``regex`` splits on non-word characters and is a baseline
that needs no JVM. :func:`make_tokenizer` lists the valid names when given a wrong one.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from weaklabel.errors import WeaklabelError
from weaklabel.text.normalize import normalize_caption
from weaklabel.text.userdict import UserDict

log = logging.getLogger(__name__)


class Tokenizer(ABC):
    """Base class: one hook, :meth:`words`, from a normalised caption to kept words."""

    name: str = ""

    def __init__(self, userdict: UserDict, *, keep_pos: Sequence[str] = ("Noun", "Hashtag",
                 "Alpha"), stem: bool = True, min_length: int = 1) -> None:
        self.userdict = userdict
        self.keep_pos = tuple(keep_pos)
        self.stem = stem
        self.min_length = min_length

    @abstractmethod
    def words(self, text: str) -> list[str]:
        """Kept words of one normalised caption, in order."""

    def tokenize(self, captions: Sequence[str]) -> list[list[str]]:
        """Normalise and tokenise captions; stop words and short words dropped."""
        out = []
        stop = self.userdict.stopwords
        for cap in captions:
            words = self.words(normalize_caption(cap)) if cap else []
            kept: list[str] = []
            for w in words:
                if w in stop or len(w) < self.min_length or (kept and kept[-1] == w):
                    continue
                kept.append(w)
            out.append(kept)
        return out

    def settings(self) -> dict[str, Any]:
        """Everything that changes the output: part of the token cache key."""
        return {"tokenizer": self.name, "keep_pos": list(self.keep_pos), "stem": self.stem,
                "min_length": self.min_length, "userdict": self.userdict.digest}


_okt_lock = threading.Lock()
_okt_state: dict[str, Any] = {"okt": None, "words": frozenset()}


def okt_with_userdict(userdict: UserDict) -> Any:
    """The process's one Okt, with the user dictionary in Okt's own noun dictionary.

    The dictionary is global state in the JVM and can only grow: it is loaded here and
    nowhere else. Words are added through Open Korean Text's Java API
    (``OpenKoreanTextProcessorJava.addNounsToDictionary``), so Okt itself keeps them
    whole, rather than tokens being merged afterwards.
    """
    with _okt_lock:
        if _okt_state["okt"] is None:
            try:
                import jpype
                from konlpy.tag import Okt
            except ImportError as exc:  # pragma: no cover - dependency missing
                raise WeaklabelError(f"konlpy is not installed ({exc}); run make install") from exc
            try:
                if not jpype.isJVMStarted():
                    _start_jvm(jpype)
                _okt_state["okt"] = Okt()
            except (OSError, RuntimeError, jpype.JVMNotFoundException) as exc:
                raise WeaklabelError(
                    f"cannot start the Java VM for Okt ({exc}); install Java 11+ "
                    "(apt-get install default-jre-headless) or set JAVA_HOME"
                ) from exc
        new = [w for w in userdict.words if w not in _okt_state["words"]]
        if new:
            import jpype

            array_list = jpype.JClass("java.util.ArrayList")()
            for w in new:
                array_list.add(w)
            processor = jpype.JClass("org.openkoreantext.processor.OpenKoreanTextProcessorJava")
            processor.addNounsToDictionary(array_list)
            _okt_state["words"] = _okt_state["words"] | frozenset(new)
            log.debug("added %d user dictionary words to Okt", len(new))
        return _okt_state["okt"]


def _start_jvm(jpype: Any, max_heap_mb: int = 1024) -> None:
    """Start the JVM on KoNLPy's class path, as ``konlpy.jvm.init_jvm`` does, but leave
    signals to Python: JPype's default ``interrupt=True`` lets the JVM halt the process on
    Ctrl-C, so no cleanup runs (no temporary files removed, no message), and without
    ``-Xrs`` the JVM's own SIGTERM handler crashes a terminated worker inside Python."""
    import os

    from konlpy import utils

    javadir = os.path.join(utils.installpath, "java")
    jpype.startJVM(jpype.getDefaultJVMPath(), "-Dfile.encoding=UTF8", "-ea", "-Xrs",
                   f"-Xmx{max_heap_mb}m",
                   classpath=[javadir, os.path.join(javadir, "bin"), os.path.join(javadir, "*")],
                   convertStrings=True, interrupt=False)


def okt_can_load(userdict: UserDict) -> bool:
    """Whether this process's Okt can tokenize with exactly ``userdict``.

    Words added to Okt's dictionary cannot be taken out again: once another dictionary
    has put in a word this one lacks, only a fresh process gives the right tokens.
    """
    return _okt_state["okt"] is None or _okt_state["words"] <= set(userdict.words)


class OktTokenizer(Tokenizer):
    """KoNLPy Okt: nouns, hashtag bodies and Latin words (lower-cased) by default."""

    name = "okt"

    def __init__(self, userdict: UserDict, **kwargs: Any) -> None:
        super().__init__(userdict, **kwargs)
        self._okt = okt_with_userdict(userdict)
        self._keep = frozenset(self.keep_pos)

    def words(self, text: str) -> list[str]:
        out = []
        for word, tag in self._okt.pos(text, norm=True, stem=self.stem):
            if tag not in self._keep:
                continue
            if tag == "Hashtag":
                word = word.lstrip("#")
            if tag in ("Alpha", "Hashtag"):
                word = word.lower()
            out.append(word)
        return out


_WORD = re.compile(r"[^\W\d_]{1,}", re.UNICODE)


class RegexTokenizer(Tokenizer):
    """Whitespace/punctuation split, lower-cased: a JVM-free baseline."""

    name = "regex"

    def words(self, text: str) -> list[str]:
        return [w.lower() for w in _WORD.findall(text)]


TOKENIZERS: dict[str, type[Tokenizer]] = {"okt": OktTokenizer, "regex": RegexTokenizer}


def make_tokenizer(name: str, userdict: UserDict, **kwargs: Any) -> Tokenizer:
    """Build a registered tokenizer by name.

    Raises:
        WeaklabelError: unknown name (the message lists the valid ones).
    """
    try:
        cls = TOKENIZERS[name]
    except KeyError:
        raise WeaklabelError(
            f"unknown tokenizer {name!r}; valid: {', '.join(sorted(TOKENIZERS))}"
        ) from None
    return cls(userdict, **kwargs)
