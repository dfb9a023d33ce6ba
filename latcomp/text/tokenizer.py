"""Lossless tokenization of text as written: the model's word tokens plus what restores the exact text.

**Tokens** are the corpus's (``train.txt`` is exactly this tokenization of ``train.raw.txt``, checked
on all 116,797 training sentences): ASCII words ``[A-Za-z0-9]+`` with inner apostrophes (``don't``)
and the marks ``. , ; : ! ?``, each as its lower-case *canonical* form. The model sees only these.

**What restores the text** (the side information of the lossless code):

* the **case** of each token, one of :data:`CASES`: ``lower`` (as the canonical form), ``capital``
  (first character upper), ``upper`` (all upper), or ``verbatim`` (any other mix; the spelling is
  kept). The first of these that reproduces the surface is chosen, so the code is unique;
* the **gaps**: the exact strings between tokens (spaces, tabs, CR, other punctuation, every
  non-ASCII character), ``len(tokens) + 1`` of them. A line is
  ``gaps[0] + surface[0] + gaps[1] + … + surface[n−1] + gaps[n]``;
* the **lines**: a text is its lines joined by ``"\\n"`` and a flag for a final newline.

Every Python string (hence every UTF-8 text) round-trips exactly: the lexer partitions the line, and
a surface is rebuilt from its canonical token and case by ASCII case mapping alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: A token: an ASCII word with inner apostrophes, or one of the marks.
TOKEN = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*|[.,;:!?]")
#: Case codes of a token's surface (module docstring), in the order they are tried.
LOWER, CAPITAL, UPPER, VERBATIM = range(4)
CASES = ("lower", "capital", "upper", "verbatim")


def _ascii_upper(s: str) -> str:
    return s.translate(_UPPER)


def _ascii_lower(s: str) -> str:
    return s.translate(_LOWER)


_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def cased(token: str, case: int) -> str:
    """The surface of canonical ``token`` in ``case`` (not ``VERBATIM``, whose spelling is stored)."""
    if case == LOWER:
        return token
    if case == CAPITAL:
        return _ascii_upper(token[:1]) + token[1:]
    if case == UPPER:
        return _ascii_upper(token)
    raise ValueError(f"case {case} has no rule (verbatim spellings are stored)")


def case_of(surface: str) -> tuple[str, int]:
    """(canonical token, case code) of a token's ``surface``: the first case of :data:`CASES` that fits."""
    token = _ascii_lower(surface)
    for case in (LOWER, CAPITAL, UPPER):
        if cased(token, case) == surface:
            return token, case
    return token, VERBATIM


@dataclass(frozen=True)
class Line:
    """One line: canonical tokens, their cases, the spellings of the verbatim ones, and the gaps."""

    tokens: tuple[str, ...]
    cases: tuple[int, ...]
    verbatim: tuple[str, ...]
    gaps: tuple[str, ...]

    def surfaces(self) -> list[str]:
        """Each token as written."""
        spellings = iter(self.verbatim)
        return [next(spellings) if c == VERBATIM else cased(t, c) for t, c in zip(self.tokens, self.cases,
                                                                                   strict=True)]

    def text(self) -> str:
        """The line as written (without its newline)."""
        parts = [self.gaps[0]]
        for surface, gap in zip(self.surfaces(), self.gaps[1:], strict=True):
            parts += [surface, gap]
        return "".join(parts)


def lex(line: str) -> Line:
    """Split ``line`` (no ``\\n`` in it) into tokens, cases and gaps; ``lex(s).text() == s`` for every ``s``."""
    if "\n" in line:
        raise ValueError("a line cannot contain a newline; split the text with split_lines")
    tokens, cases, verbatim, gaps = [], [], [], []
    end = 0
    for match in TOKEN.finditer(line):
        gaps.append(line[end:match.start()])
        token, case = case_of(match.group())
        tokens.append(token)
        cases.append(case)
        if case == VERBATIM:
            verbatim.append(match.group())
        end = match.end()
    gaps.append(line[end:])
    return Line(tuple(tokens), tuple(cases), tuple(verbatim), tuple(gaps))


def split_lines(text: str) -> tuple[list[str], bool]:
    """(lines, whether the text ends with a newline): the inverse of :func:`join_lines`.

    ``"\\r"`` stays inside its line (a CRLF file keeps its CRs in the gaps); an empty text is one
    empty line without a newline.
    """
    final = text.endswith("\n")
    return (text[:-1] if final else text).split("\n"), final


def join_lines(lines: list[str], final_newline: bool) -> str:
    """The text of ``lines`` joined by newlines, with one at the end if ``final_newline``."""
    return "\n".join(lines) + ("\n" if final_newline else "")


def tokenize(line: str) -> list[str]:
    """The canonical tokens of ``line`` (what the model sees; ``train.txt``'s tokenization)."""
    return [_ascii_lower(m.group()) for m in TOKEN.finditer(line)]
