"""Tokenizers behind one interface, and the one place Okt's JVM is started.

A tokenizer turns normalised captions into lists of kept words. ``okt`` (KoNLPy's Open
Korean Text) is the default; ``kiwi`` (kiwipiepy, a C++ morphological analyser with its
own model, no JVM) keeps the same parts of speech; ``regex`` splits on non-word
characters and is a baseline. :func:`make_tokenizer` lists the valid names when given a
wrong one; :func:`tokenizer_version` names the library version behind each, which is
part of the token cache key.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from weaklabel.errors import WeaklabelError
from weaklabel.text.normalize import fold, normalize_caption
from weaklabel.text.userdict import UserDict

log = logging.getLogger(__name__)

TOKEN_RULES = 3
"""The version of the rules around the analysers (casing, hashtags, protected user
words, codes kept whole): part of the token cache key, so a change re-tokenises."""


_TRAILING = re.compile(r"[^\w]+$")
_LATIN = re.compile(r"[A-Za-z0-9]")

# Hashtags and e-mail addresses (group 1; a hashtag from anywhere, an address from a
# word's start), which the analysers keep or drop whole, so nothing is cut inside them.
_WHOLE = r"(#[^\s#]+|(?<!\S)[^\s@]+@\S+)"
# A code (group 2): a whole run of Latin letters and digits holding both, such as S24,
# 256GB, i7, 5G, Y2K or the DQ3955 of DQ3955-100. Okt and Kiwi split it into a letter
# word and a dropped number (S24 -> s), so a model, a size or a name like 2NE1 would
# leave only a stray letter. Not the tail of a decimal, a thousands group or a time
# (the 5mm of 3.5mm, the 600cc of 1,600cc, the 30AM of 10:30AM).
_CODE = re.compile(_WHOLE + r"|(?<![A-Za-z0-9])(?<![0-9][.,:])"
                   r"((?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]+)(?![A-Za-z0-9])")
# Korean counters and units a number is written against: the 8 of sbs8시뉴스, the 48 of
# MRI48만원 and the 1 of kbs1박2일 belong to the Hangul after them, not to the letters.
_COUNTER = re.compile(r"[시분초원만천억박일개명번회년월층살차호위]")
_TRAILING_DIGITS = re.compile(r"[0-9]+$")
# Plain nouns Okt reads before a particle, in a code's place: one ending in a
# consonant for the particles that follow one (S24을 is rare, G70을 is not), else a
# vowel (S24를, 5G가, 3CE의).
_HOLDERS = ("제품", "우유")
_AFTER_CONSONANT = frozenset("을이은과")


def code_spans(text: str, keep: re.Pattern[str] | None = None) -> list[tuple[int, int]]:
    """Where ``text``'s codes (:data:`_CODE`) are, as ``(start, end)``, in order:
    never inside a hashtag or an e-mail address, nor overlapping a match of ``keep``'s
    group 2 (a user word the dictionary keeps whole, such as 제네시스G70). One rule for
    every tokenizer.

    Example:
        >>> t = "갤럭시 S24 3.5mm sbs8시뉴스 5G폰"
        >>> [t[a:b] for a, b in code_spans(t)]
        ['S24', '5G']
    """
    kept: list[tuple[int, int]] | None = None  # the user words' spans, once a code needs them
    out: list[tuple[int, int]] = []
    for m in _CODE.finditer(text):
        if m.group(2) is None:
            continue  # a hashtag or an e-mail address
        start, end = m.span(2)
        code = m.group(2)
        if code[-1].isdigit() and _COUNTER.match(text, end):
            code = _TRAILING_DIGITS.sub("", code)
            end = start + len(code)
            if not any(c.isdigit() for c in code):
                continue  # letters alone: the analyser's Latin word, as before
        if kept is None:
            kept = [u.span(2) for u in keep.finditer(text) if u.group(2)] if keep else []
        if any(a < end and start < b for a, b in kept):
            continue
        out.append((start, end))
    return out


def cut_codes(text: str, keep: re.Pattern[str] | None = None) -> list[tuple[str, bool]]:
    """``text`` as pieces in order, each ``(piece, is_code)``: the codes of
    :func:`code_spans` alone, the text between them as it is (hashtags and e-mail
    addresses left inside it, whole)."""
    out: list[tuple[str, bool]] = []
    start = 0
    for a, b in code_spans(text, keep):
        if a > start:
            out.append((text[start:a], False))
        out.append((text[a:b], True))
        start = b
    if start < len(text) or not out:
        out.append((text[start:], False))
    return out


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
                w = fold(w)
                if w in stop or len(w) < self.min_length or (kept and kept[-1] == w):
                    continue
                kept.append(w)
            out.append(kept)
        return out

    def settings(self) -> dict[str, Any]:
        """Everything that changes the output: part of the token cache key (the one
        rule, :func:`output_settings`, that the tokenize stage keys its cache by)."""
        return output_settings(self.name, self.keep_pos, self.stem, self.min_length,
                               self.userdict)


def output_settings(name: str, keep_pos: Sequence[str], stem: bool, min_length: int,
                    userdict: UserDict) -> dict[str, Any]:
    """What decides a tokenizer's output: its name and library version, the rules
    around it (:data:`TOKEN_RULES`), the kept parts of speech, stemming, the shortest
    word and the user dictionary's digest."""
    return {"tokenizer": name, "version": tokenizer_version(name), "rules": TOKEN_RULES,
            "keep_pos": list(keep_pos), "stem": stem, "min_length": min_length,
            "userdict": userdict.digest}


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
        # words with a Latin letter or digit are kept whole by OktTokenizer itself
        new = [w for w in userdict.words if w not in _okt_state["words"] and not _LATIN.search(w)]
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
        self._protect = _protected(userdict.words)

    def words(self, text: str) -> list[str]:
        """Okt's kept words. User words holding Latin letters or digits (``3CE``,
        ``G70``, ``W컨셉``) are cut out of the text first and kept whole: Okt's noun
        dictionary takes only Hangul, and splits ``G70`` into ``g`` and a dropped
        number. Hashtags are left to Okt, which keeps them whole."""
        if self._protect is None:
            return self._pos_words(text)
        out: list[str] = []
        start = 0
        for m in self._protect.finditer(text):
            if m.group(1) is not None:
                continue  # a hashtag
            out += self._pos_words(text[start:m.start()])
            if "Noun" in self._keep:
                out.append(m.group(2))
            start = m.end()
        out += self._pos_words(text[start:])
        return out

    def _pos_words(self, text: str) -> list[str]:
        """Okt's kept words of ``text``, its codes (:func:`cut_codes`) kept whole
        where Latin words are kept."""
        out: list[str] = []
        after_code = False
        for piece, is_code in cut_codes(text):
            if is_code:
                if "Alpha" in self._keep:
                    out.append(piece)
            elif after_code and not piece[:1].isspace():
                # Glued to the code (S24를): a plain noun holds the code's place, so
                # that Okt reads the particle as one, not as a noun of its own.
                holder = _HOLDERS[piece[0] not in _AFTER_CONSONANT]
                words = self._okt_words(holder + piece)
                out += words[1:] if words[:1] == [holder] else self._okt_words(piece)
            else:
                out += self._okt_words(piece)
            after_code = is_code
        return out

    def _okt_words(self, text: str) -> list[str]:
        if not text.strip():
            return []
        out = []
        for word, tag in self._okt.pos(text, norm=True, stem=self.stem):
            if tag not in self._keep:
                continue
            if tag == "Hashtag":
                word = word.lstrip("#")
            out.append(word)  # folded by tokenize, as every tokenizer's words
        return out


# group 1, left to Okt: a hashtag (Okt keeps it whole) or an e-mail address (Okt drops
# it), each from a word's start; group 2: a user word, not inside a longer Latin or digit run
_PROTECT = _WHOLE + r"|(?<![A-Za-z0-9])({words})(?![A-Za-z0-9])"  # as _CODE, words for codes
_MAX_NESTING = 100  # re's parser recurses per nested group (Python 3.11: 400 ok, 600 fail)
_Trie = dict[str, "_Trie"]  # a character to the rest; "" marks a word's end


def _protected(words: Sequence[str]) -> re.Pattern[str] | None:
    """A pattern finding hashtags and e-mail addresses (group 1) and the user words Okt
    cannot keep whole (group 2: those with a Latin letter or a digit), not inside a
    longer Latin or digit run, in any case (``re.IGNORECASE``); None when there are none.

    The words are one character trie written as nested groups (:func:`_trie_pattern`),
    behind a look-ahead for the words' first characters: a plain alternation of
    thousands of brand and model names tries every word at every position, the trie one
    branch per distinct next character, and most positions fail the look-ahead at once.
    Both find the longest word that ends before a non-Latin, non-digit character, so the
    matches are the same (``bench/bench_protect.py`` times both).
    """
    latin = [w for w in words if _LATIN.search(w)]
    if not latin:
        return None
    trie = _trie_pattern(latin)
    if trie is None:  # hundreds of words each a prefix of the next: the plain alternation
        trie = "|".join(re.escape(w) for w in sorted(latin, key=len, reverse=True))
    # a class takes at least what each of its characters does: only a pre-filter
    first = re.escape("".join(sorted({w[0] for w in latin})))
    return re.compile(_PROTECT.format(words=f"(?=[{first}]){trie}"), re.IGNORECASE)


def _case_classes(chars: set[str]) -> dict[str, str]:
    """Each character to one representative of the characters ``re.IGNORECASE`` takes
    for it (``i``, ``I`` and the dotless ``ı`` are one; Hangul and digits only
    themselves). Found by ``re`` itself, so the trie merges exactly what the alternation
    treats alike. Two such sets are the same or disjoint (Python 3.11's re, checked over
    every code point), so a text character follows at most one branch of a trie node."""
    ordered = "".join(sorted(chars))
    rep: dict[str, str] = {}
    for c in ordered:
        if c in rep:
            continue
        if c.lower() == c and c.upper() == c:
            rep[c] = c  # uncased: re compares it as is
            continue
        for t in re.findall(re.escape(c), ordered, re.IGNORECASE):
            rep[t] = c
    return rep


def _trie_pattern(words: Sequence[str]) -> str | None:
    """``words`` as one regex, longest match first: a character trie (characters merged
    as ``re.IGNORECASE`` compares them) written as nested non-capturing groups, each
    word's longer continuations before its end (``(?:...)?`` is greedy). A chain of
    single children is one literal run; None when the groups would nest more than
    :data:`_MAX_NESTING` deep."""
    rep = _case_classes({c for w in words for c in w})
    root: _Trie = {}
    for w in words:
        node = root
        for c in w:
            node = node.setdefault(rep[c], {})
        node[""] = {}  # a word ends here

    def pattern(node: _Trie, depth: int) -> str | None:
        if depth > _MAX_NESTING:
            return None
        branches = []
        for c in sorted(k for k in node if k):
            run, child = [c], node[c]
            while len(child) == 1 and "" not in child:
                ((nxt, child),) = child.items()
                run.append(nxt)
            rest = pattern(child, depth + 1)
            if rest is None:
                return None
            branches.append(re.escape("".join(run)) + rest)
        if not branches:
            return ""
        body = "|".join(branches)
        if "" in node:  # this word's end, after every longer word through it
            return f"(?:{body})?"
        return body if len(branches) == 1 else f"(?:{body})"

    return pattern(root, 0)


_WORD = re.compile(r"[^\W\d_]{1,}", re.UNICODE)


class RegexTokenizer(Tokenizer):
    """Whitespace/punctuation split, lower-cased: a JVM-free baseline."""

    name = "regex"

    def words(self, text: str) -> list[str]:
        out: list[str] = []
        for piece, is_code in cut_codes(text):
            out += [piece] if is_code else _WORD.findall(piece)
        return out


# Okt's part-of-speech names (the config's ``tokenize.keep_pos``) as Kiwi's Sejong tags.
KIWI_TAGS: dict[str, tuple[str, ...]] = {
    "Noun": ("NNG", "NNP"), "Hashtag": ("W_HASHTAG",), "Alpha": ("SL",),
    "Verb": ("VV",), "Adjective": ("VA",), "Adverb": ("MAG",), "Number": ("SN",),
    "Foreign": ("SL", "SH"), "Determiner": ("MM",), "Exclamation": ("IC",),
}
_KIWI_TAG = re.compile(r"[A-Z][A-Z_-]*")  # one of Kiwi's own tags, e.g. NNB, XR

_kiwi_lock = threading.Lock()
_kiwi_state: dict[str, Any] = {"words": None, "kiwi": None}


def kiwi_with_userdict(userdict: UserDict) -> Any:
    """A Kiwi analyser with the user dictionary's words added as proper nouns.

    Unlike Okt's, Kiwi's dictionary belongs to one ``Kiwi`` object, so a new dictionary
    gets a new analyser (loading the model takes about 1.5 s; the last one is kept).
    """
    with _kiwi_lock:
        if _kiwi_state["words"] == userdict.words:
            return _kiwi_state["kiwi"]
        try:
            from kiwipiepy import Kiwi
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise WeaklabelError(f"kiwipiepy is not installed ({exc}); run "
                                 "pip install -e . (it is a main dependency)") from exc
        with warnings.catch_warnings():
            # 0 threads: tokenize in the calling thread; worker processes give the
            # parallelism, as with Okt. (kiwipiepy warns that 0 meant "all cores" once.)
            warnings.simplefilter("ignore", DeprecationWarning)
            kiwi = Kiwi(num_workers=0)
        for w in userdict.words:
            kiwi.add_user_word(w, "NNP")
        _kiwi_state.update(words=userdict.words, kiwi=kiwi)
        log.debug("Kiwi loaded with %d user dictionary words", len(userdict.words))
        return kiwi


class KiwiTokenizer(Tokenizer):
    """kiwipiepy's Kiwi: the same kept parts of speech as Okt (names mapped by
    :data:`KIWI_TAGS`; Kiwi's own tags such as ``NNB`` work too), user words whole."""

    name = "kiwi"

    def __init__(self, userdict: UserDict, **kwargs: Any) -> None:
        super().__init__(userdict, **kwargs)
        keep: set[str] = set()
        for pos in self.keep_pos:
            if pos in KIWI_TAGS:
                keep.update(KIWI_TAGS[pos])
            elif _KIWI_TAG.fullmatch(pos):
                keep.add(pos)
            else:
                raise WeaklabelError(
                    f"tokenize.keep_pos: {pos!r} is not a part of speech the kiwi tokenizer "
                    f"knows; use {', '.join(KIWI_TAGS)} or a Kiwi tag such as NNG")
        self._keep = frozenset(keep)
        self._kiwi = kiwi_with_userdict(userdict)
        self._protect = _protected(userdict.words)

    def words(self, text: str) -> list[str]:
        """Kiwi's kept words. Codes (:func:`code_spans`; not those inside a user word,
        which Kiwi's dictionary keeps) go in as Latin words (``SL``) fixed in advance,
        so Kiwi reads the whole caption and the particle after a code stays a particle
        (``S24를``), and they are kept where Latin words are, as by Okt."""
        pre = [(a, b, "SL") for a, b in code_spans(text, self._protect)]
        out = []
        for tok in self._kiwi.tokenize(text, pretokenized=pre or None):
            tag = tok.tag
            if tag not in self._keep:
                continue
            if tag == "W_HASHTAG":  # Kiwi keeps '#데일리룩~' whole: the punctuation goes
                word = _TRAILING.sub("", tok.form.lstrip("#"))
            elif tag in ("SL", "SH"):
                word = tok.form
            elif self.stem and tag in ("VV", "VA"):
                word = tok.lemma  # 샀 → 사다, as Okt's stem=True
            else:
                word = tok.form
            if word:
                out.append(word)
        return out


TOKENIZERS: dict[str, type[Tokenizer]] = {"okt": OktTokenizer, "kiwi": KiwiTokenizer,
                                          "regex": RegexTokenizer}

# The distribution whose version decides each tokenizer's output (its model included).
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"okt": ("konlpy",),
                                              "kiwi": ("kiwipiepy", "kiwipiepy_model")}


def tokenizer_version(name: str) -> str:
    """The library (and model) version behind tokenizer ``name``, e.g.
    ``"kiwipiepy 0.24.1, kiwipiepy_model 0.24.0"``; read from the installed package
    metadata, so nothing heavy is imported. A new version re-tokenises."""
    from importlib import metadata

    parts = []
    for dist in _DISTRIBUTIONS.get(name, ()):
        try:
            parts.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist} missing")
    return ", ".join(parts)


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
