"""Text to token streams that survive reformatting and renaming.

Code (any language, one tokenizer): whitespace and comments are dropped, string and number
literals become the classes S and N, keywords, operators, attribute names (after a dot), dunder
names and import statements (module and imported names) stay as written, and every other
identifier is replaced by the distance back to its previous occurrence (Baker's parameterised
strings), so a consistent renaming gives the same stream. The same tokens are also kept as
written, for the exact-copy channel. The k-gram hasher turns distances that reach outside a
k-gram into "new identifier", which keeps each k-gram's hash a function of its own tokens.

Prose: case-folded words, numbers (all digits) as one class; punctuation and whitespace dropped.
Comments and long string literals of code files (docstrings) are returned as notes for the prose
channel, except licence headers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Identifiers kept as themselves: reserved words and literal names of the common languages.
# Words that are keywords in one language but ordinary names in most code (SQL's `count`,
# `values`, `order`; Go's `func`; `type`, `match`, `default`, `end`) are renameable identifiers:
# a renamed `count = 0` must still match.
_KEYWORD_LIST = """
    and as assert async await break catch class const continue def del do elif else enum except
    export extends false final finally for foreach from function goto if impl implements
    import in instanceof interface is lambda let mut namespace new nil none nonlocal not null or
    pass private protected pub public raise readonly return self static struct super switch
    synchronized this throw throws true try typedef typeof union unsafe using var void volatile
    while with yield int long short char bool boolean float double byte unsigned signed sizeof
    extern typename virtual override abstract sealed case then elsif unless until undef fi esac
    delete global
"""
KEYWORDS = frozenset(_KEYWORD_LIST.split())

# Every match skips the whitespace before its token (one C loop instead of a failed match per
# blank); the token is the numbered group that matched.
CODE_PATTERN = re.compile(
    r"""
    \s*(?:
    (```[^\n]*)
  | ((?<![\w.])(?:from[ \t]+[\w.]+[ \t]+)?import\b(?:[ \t]*\([^)]*\)|[^\n])*)
  | (/\*.*?\*/|//[^\n]*|\#[^\n]*|<!--.*?-->)
  | (\"\"\".*?\"\"\"|'''.*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`[^`\n]*`)
  | (\.?\d[\w.]*)
  | ([^\W\d]\w*)
  | (==|!=|<=|>=|->|=>|\*\*|::|&&|\|\||<<|>>|\+=|-=|\*=|/=|:=|[^\s\w])
    )""",
    re.VERBOSE | re.DOTALL,
)
_FENCE, _IMPORTS, _COMMENT, _STRING, _NUMBER, _IDENT, _OP = range(1, 8)
WORD_PATTERN = re.compile(r"\w+")
IMPORT_PART = re.compile(r"\w+|[^\s\w]")
# Notes (comments, docstrings) that mention these are licence boilerplate, not content.
LICENCE = re.compile(
    r"copyright|licen[cs]e|spdx-|all rights reserved|permission is hereby granted|warranty",
    re.IGNORECASE,
)
# Paragraphs of documents with these are licence or warranty boilerplate (narrower than LICENCE:
# a contract may well talk about licences).
LICENCE_TEXT = re.compile(
    r"permission is hereby granted|redistribution and use in source|all rights reserved"
    r"|spdx-license-identifier|licensed under the|without warranties|merchantability"
    r"|this program is free software|gnu (lesser |library )?general public licen[cs]e"
    r"|without fee is hereby granted|above copyright notice|disclaims? all warranties"
    r"|express or implied warranty|altered source versions must be plainly marked",
    re.IGNORECASE,
)
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
NOTE_MIN_CHARS = 40  # shorter string literals are data, not prose
_CACHE_LIMIT = 1 << 20
_token_hashes: dict[str, int] = {}


def token_hash(token: str) -> int:
    """A stable 63-bit hash of a token (Python's own str hash changes with every process)."""
    value = _token_hashes.get(token)
    if value is None:
        digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        value = int.from_bytes(digest, "little") >> 1
        if len(_token_hashes) > _CACHE_LIMIT:
            _token_hashes.clear()
        _token_hashes[token] = value
    return value


STRING_CLASS = token_hash("\x00S")
NUMBER_CLASS = token_hash("\x00N")
_KEYWORD_HASH = {
    variant: token_hash(k) for k in KEYWORDS for variant in (k, k.upper(), k.capitalize())
}


@dataclass(frozen=True, slots=True)
class Tokens:
    """A token stream: values (0 for renameable identifiers), identifier back-distances (-1 for
    other tokens, 0 for a first occurrence) and each token's character span in the text."""

    values: npt.NDArray[np.uint64]
    dists: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    ends: npt.NDArray[np.int64]
    # The tokens as written (names and literal values hashed), for the exact-copy channel.
    lexical: npt.NDArray[np.uint64]
    # The line each token stands on (0-based), for line-anchored fingerprints.
    lines: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.values)


def _tokens(
    text: str,
    values: list[int],
    dists: list[int],
    spans: list[int],
    lexical: list[int],
) -> Tokens:
    bounds = np.array(spans, dtype=np.int64).reshape(-1, 2)  # start, end, start, end, ...
    starts = bounds[:, 0].copy()
    return Tokens(
        np.array(values, dtype=np.uint64),
        np.array(dists, dtype=np.int64),
        starts,
        bounds[:, 1].copy(),
        np.array(lexical, dtype=np.uint64),
        np.searchsorted(_newlines(text), starts).astype(np.int64),
    )


def _newlines(text: str) -> npt.NDArray[np.int64]:
    """Character offsets of the line breaks of `text`."""
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return np.flatnonzero(points == 10)


def code_tokens(text: str, notes: list[str] | None = None) -> Tokens:
    """The code token stream of `text`; comments and docstrings go to `notes` when given."""
    values: list[int] = []
    dists: list[int] = []
    spans: list[int] = []
    lexical: list[int] = []
    last_seen: dict[str, int] = {}
    keyword = _KEYWORD_HASH.get
    known = _token_hashes.get
    comment_end = -1
    after_dot = False
    for m in CODE_PATTERN.finditer(text):
        kind = m.lastindex
        if kind is None:  # trailing whitespace
            continue
        token = m.group(kind)
        dotted, after_dot = after_dot, kind == _OP and token == "."
        if kind == _IDENT:
            value = keyword(token)
            if value is None and (dotted or token.startswith("__")):
                # attributes and dunders name someone else's interface: renaming them would
                # break the code, and they make a k-gram far more specific than a placeholder
                value = known(token) or token_hash(token)
            elif value is None:
                i = len(values)
                previous = last_seen.get(token)
                last_seen[token] = i
                values.append(0)
                dists.append(0 if previous is None else i - previous)
                spans.extend(m.span(kind))
                lexical.append(known(token) or token_hash(token))
                continue
            written = value
        elif kind == _OP:
            value = written = known(token) or token_hash(token)
        elif kind == _STRING:
            value, written = STRING_CLASS, token_hash(_unquoted(token))
            if notes is not None and len(token) >= NOTE_MIN_CHARS:
                notes.append(token)
        elif kind == _NUMBER:
            value, written = NUMBER_CLASS, token_hash(token)
        elif kind == _IMPORTS:  # module and imported names are nobody's to rename
            after_dot = False
            offset = m.start(kind)
            for part in IMPORT_PART.finditer(token):
                value = known(part.group()) or token_hash(part.group())
                values.append(value)
                dists.append(-1)
                spans.extend((offset + part.start(), offset + part.end()))
                lexical.append(value)
            continue
        else:
            after_dot = dotted
            if kind == _COMMENT and notes is not None:
                # a run of line comments is one note, so a licence header goes out whole
                if m.start() == comment_end and notes:
                    notes[-1] += "\n" + token
                else:
                    notes.append(token)
                comment_end = m.end()
            continue
        values.append(value)
        dists.append(-1)
        spans.extend(m.span(kind))
        lexical.append(written)
    return _tokens(text, values, dists, spans, lexical)


def _unquoted(literal: str) -> str:
    """A string literal's content: the quote style is formatting, not content."""
    quote = 3 if literal[:3] in ('"""', "'''") else 1
    return "\x00s" + literal[quote:-quote]


def prose_tokens(text: str) -> Tokens:
    """Case-folded words of `text`; numbers are one class (dates and amounts change), while
    words with letters in them (commit hashes, version tags) stay themselves."""
    matches = list(WORD_PATTERN.finditer(text))
    known = _token_hashes.get
    words = [m.group().lower() for m in matches]
    values = [NUMBER_CLASS if w.isdigit() else (known(w) or token_hash(w)) for w in words]
    spans = [at for m in matches for at in m.span()]
    return _tokens(text, values, [-1] * len(values), spans, values)


def without_licences(text: str) -> str:
    """A document's text with its licence and warranty paragraphs left out."""
    if not LICENCE_TEXT.search(text):
        return text
    return "\n\n".join(p for p in _PARAGRAPH.split(text) if not LICENCE_TEXT.search(p))


def notes_text(notes: list[str]) -> str:
    """The prose of a code file's comments and docstrings, licence headers left out."""
    return "\n".join(n for n in notes if not LICENCE.search(n))
