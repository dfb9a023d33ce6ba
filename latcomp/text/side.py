"""The side information of lossless text files: what restores a line as written from its token ids.

Coded after a line's tokens, in this order, each symbol with integer-valued probabilities that
both sides compute identically (static counts of :class:`~latcomp.text.statistics.SideStatistics`
learned from the training text, plus adaptive counts of the file so far, +:data:`INCREMENT` per use):

1. **unknown tokens' spellings**: a :class:`Lexicon` of the training text's unknown words (their
   counts) and the words this file has spelled, with an escape (Witten–Bell: its count is the
   number of training words, + :data:`INCREMENT` per escape); after an escape, the characters of the
   new word under :class:`CharModel` (Witten–Bell interpolation of orders 0…:data:`ORDER`, counts
   from the lexicon's words and the file's new words);
2. **cases** of the words (:class:`CaseModel`): in context (sentence start or not, the token's case
   class), blended inside a sentence with the token's own training counts; the letter cases of
   ``verbatim`` words (adaptive, first letter or not);
3. **gaps**: a :class:`Lexicon` of the gap strings per gap context
   (:func:`~latcomp.text.statistics.gap_context`), static counts scaled to :data:`GAP_PRIOR`; a new
   gap is escaped and spelled as UTF-8 bytes (adaptive).

Without statistics (:meth:`SideStatistics.empty`) the models are adaptive only, each gap context
starting from the usual gap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from latcomp.errors import FormatError
from latcomp.text.statistics import SideStatistics, gap_context, has_case, sentence_start, usual_gap
from latcomp.text.tokenizer import LOWER, VERBATIM, Line
from latcomp.text.vocabulary import UNK, Vocabulary

#: Characters of canonical tokens (the alphabet of unknown tokens' spellings, marks included), then the end symbol.
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789'.,;:!?"
END_CHAR = len(CHARS)
SYMBOLS = END_CHAR + 1
#: Count added to an adaptive count each time its symbol is coded.
INCREMENT = 24
#: Highest order (previous characters) of the character model of new words.
ORDER = 4
#: Fixed-point one of the character model's interpolation.
ONE = 1 << 24
#: Total that each gap context's and case context's static counts are scaled to (so that the file's own counts
#: take over within some hundred symbols where the file differs from the training text).
GAP_PRIOR, CASE_PRIOR = 1 << 16, 1 << 12

#: A symbol coder: ``code(symbol, probabilities)`` codes ``symbol`` (encoder) or returns the decoded one
#: (decoder, ``symbol`` None).
Code = Callable[[int | None, np.ndarray], int]


class Adaptive:
    """Adaptive categorical counts over ``n`` symbols in ``contexts`` contexts (initial count 1 each)."""

    def __init__(self, n: int, contexts: int = 1):
        self.counts = np.ones((contexts, n))

    def code(self, code: Code, symbol: int | None, context: int = 0) -> int:
        """Code ``symbol`` (None when decoding) and count it."""
        out = code(symbol, self.counts[context].copy())
        self.counts[context, out] += INCREMENT
        return out


def scaled(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer counts scaled to about ``total`` (⌊c·total/Σc⌋ + 1: none is zero)."""
    counts = np.asarray(counts, np.int64)
    return counts * total // max(int(counts.sum()), 1) + 1


class Lexicon:
    """Strings with counts and an escape; the file's new strings join it as they are spelled (module docstring)."""

    def __init__(self, counts: Mapping[str, int] | Iterable[tuple[str, int]], escape: int):
        entries = sorted(dict(counts).items(), key=lambda e: (-e[1], e[0]))
        self.items = [s for s, _ in entries]
        self.index = {s: i for i, s in enumerate(self.items)}
        self.counts = np.array([c for _, c in entries] + [max(escape, 1)], np.float64)   # the escape last

    def code(self, code: Code, item: str | None, spell: Callable[[str | None], str]) -> str:
        """Code ``item`` (None when decoding): its index, or the escape (certain in an empty lexicon, not coded)
        and ``spell(item)``."""
        symbol = len(self.items)
        if self.items:
            symbol = code(None if item is None else self.index.get(item, symbol), self.counts.copy())
        self.counts[symbol] += INCREMENT
        if symbol < len(self.items):
            return self.items[symbol]
        new = spell(item)
        if new in self.index:
            raise FormatError("corrupt payload (a spelled string is in the lexicon)")
        self.index[new] = len(self.items)
        self.items.append(new)
        self.counts = np.insert(self.counts, -1, INCREMENT)
        return new


class CharModel:
    """Characters of new words: Witten–Bell interpolation of orders 0…ORDER, integer fixed point.

    P_k = (c_k·ONE + u_k·P_{k−1}) // (n_k + u_k), with c_k the counts after the previous k characters
    (start padded with the end symbol), n_k their sum and u_k the symbols seen there; P_{−1} uniform.
    Counts come from ``words`` (one per word) plus every word :meth:`add` is given.
    """

    def __init__(self, words: Iterable[str]):
        self.static = _static_counts(list(words))
        self.added: dict[tuple[int, int], np.ndarray] = {}

    def add(self, word: str) -> None:
        history = [END_CHAR] * ORDER
        for s in [CHARS.index(c) for c in word] + [END_CHAR]:
            for k in range(ORDER + 1):
                self.added.setdefault((k, _context_id(history, k)), np.zeros(SYMBOLS, np.int64))[s] += 1
            history.append(s)

    def counts(self, k: int, history: list[int]) -> np.ndarray | None:
        """The counts after the last ``k`` symbols of ``history`` (None: never seen)."""
        cid = _context_id(history, k)
        index, table = self.static[k]
        row, added = index.get(cid), self.added.get((k, cid))
        if row is None:
            return added
        return table[row] if added is None else table[row] + added

    def probabilities(self, history: list[int]) -> np.ndarray:
        """Integer probabilities of the next character after ``history`` (padded symbols, at least ORDER)."""
        p = np.full(SYMBOLS, ONE // SYMBOLS, np.int64)
        for k in range(ORDER + 1):
            c = self.counts(k, history)
            if c is not None:
                u = int(np.count_nonzero(c))
                p = (c * ONE + u * p) // (int(c.sum()) + u)
        return (p + 1).astype(np.float64)

    def code(self, code: Code, word: str | None) -> str:
        """A new word's characters then the end symbol; the word is then counted."""
        history, chars = [END_CHAR] * ORDER, []
        symbols = None if word is None else [CHARS.index(c) for c in word] + [END_CHAR]
        for i in itertools.count():
            s = code(None if symbols is None else symbols[i], self.probabilities(history))
            if s == END_CHAR:
                break
            chars.append(CHARS[s])
            history.append(s)
        self.add("".join(chars))
        return "".join(chars)


def _context_id(history: list[int], k: int) -> int:
    """The last ``k`` symbols of ``history`` as one number (the most recent is the lowest digit)."""
    return sum(history[-j] * SYMBOLS ** (j - 1) for j in range(1, k + 1))


def _static_counts(words: list[str]) -> list[tuple[dict[int, int], np.ndarray]]:
    """Per order k: (context id → row, counts (contexts, SYMBOLS)) of the characters of ``words`` (vectorized)."""
    stream = np.frombuffer("".join("\0" * ORDER + w + "\1" for w in words).encode("ascii"), np.uint8)
    symbols = _SYMBOL_OF_BYTE[stream]
    targets = np.flatnonzero(stream != 0)
    context = np.zeros(len(targets), np.int64)
    tables = []
    for k in range(ORDER + 1):
        if k:
            context += symbols[targets - k] * SYMBOLS ** (k - 1)
        keys, counts = np.unique(context * SYMBOLS + symbols[targets], return_counts=True)
        ids, rows = np.unique(keys // SYMBOLS, return_inverse=True)
        table = np.zeros((len(ids), SYMBOLS), np.int64)
        table[rows, keys % SYMBOLS] = counts
        tables.append((dict(zip(ids.tolist(), range(len(ids)), strict=True)), table))
    return tables


#: The symbol of each byte of :func:`_static_counts`' stream: the characters', and the end symbol for the
#: start padding (0) and the end of a word (1).
_SYMBOL_OF_BYTE = np.full(256, END_CHAR, np.int64)
_SYMBOL_OF_BYTE[np.frombuffer(CHARS.encode("ascii"), np.uint8)] = np.arange(len(CHARS))


class CaseModel:
    """The case of a word: counts by (sentence start, case class), scaled, plus the file's; inside a sentence
    blended (Witten–Bell) with the token's own training counts."""

    def __init__(self, stats: SideStatistics):
        self.stats = stats
        self.counts = np.stack([[scaled(row, CASE_PRIOR) for row in start] for start in stats.case_table])
        self.counts = self.counts.astype(np.float64)

    def code(self, code: Code, token: str, start: int, case: int | None) -> int:
        k = self.stats.case_class(token)
        g = self.counts[start, k]
        own = None if start else self.stats.cases.get(token)
        p = g if own is None else np.asarray(own) * g.sum() + np.count_nonzero(own) * g
        out = code(case, p.copy())
        self.counts[start, k, out] += INCREMENT
        return out


class SideModels:
    """The side information's models for one file (module docstring)."""

    def __init__(self, stats: SideStatistics | None = None):
        stats = stats or SideStatistics.empty()
        self.stats = stats
        self.words = Lexicon(stats.unknown, len(stats.unknown))
        self.chars: CharModel | None = None                     # built when the first new word is spelled
        self.case = CaseModel(stats)
        self.letter = Adaptive(2, 2)                            # context: first letter of the word or not
        self.gaps: dict[int, Lexicon] = {}
        self.gap_byte = Adaptive(257, 1)                        # 256 bytes + end

    def spell_word(self, code: Code, word: str | None) -> str:
        if self.chars is None:
            self.chars = CharModel(self.stats.unknown)
        return self.chars.code(code, word)

    def gap_lexicon(self, context: int, usual: str) -> Lexicon:
        if context not in self.gaps:
            counts = self.stats.gaps.get(context) or {usual: 1}
            values = scaled(np.array(list(counts.values())), GAP_PRIOR)
            self.gaps[context] = Lexicon(zip(counts, values.tolist(), strict=True), len(counts))
        return self.gaps[context]

    def spell_gap(self, code: Code, gap: str | None) -> str:
        data = None if gap is None else list(gap.encode("utf-8")) + [256]
        out = bytearray()
        for i in itertools.count():
            b = self.gap_byte.code(code, None if data is None else data[i])
            if b == 256:
                break
            out.append(b)
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("corrupt payload (a gap is not UTF-8)") from None


def code_cases(code: Code, side: SideModels, line: Line | None, tokens: list[str]) -> tuple[list[int], list[str]]:
    """The case codes of the words (words without letters are lower by rule) and the verbatim spellings."""
    cases, verbatim = [], []
    spellings = iter(line.verbatim) if line is not None else None
    for i, token in enumerate(tokens):
        if not has_case(token):
            cases.append(LOWER)
            continue
        case = side.case.code(code, token, sentence_start(tokens, i), None if line is None else line.cases[i])
        cases.append(case)
        if case == VERBATIM:
            surface = next(spellings) if spellings is not None else None
            letters = []
            for j, c in enumerate(token):
                if not c.isalpha():
                    letters.append(c)
                    continue
                upper = side.letter.code(code, None if surface is None else int(surface[j].isupper()), int(j == 0))
                letters.append(c.upper() if upper else c)
            verbatim.append("".join(letters))
    return cases, verbatim


def code_gaps(code: Code, side: SideModels, line: Line | None, tokens: list[str]) -> list[str]:
    """Every gap of the line, each in its context's lexicon."""
    gaps: list[str] = []
    for pos in range(len(tokens) + 1):
        lexicon = side.gap_lexicon(gap_context(tokens, gaps, pos), usual_gap(tokens, pos))
        gaps.append(lexicon.code(code, None if line is None else line.gaps[pos],
                                 lambda gap: side.spell_gap(code, gap)))
    return gaps


def code_words(code: Code, side: SideModels, vocab: Vocabulary, ids: list[int], line: Line | None) -> list[str]:
    """The line's canonical tokens: the vocabulary's words, the unknown ones coded by the lexicon (or spelled)."""
    tokens = []
    unknown = iter(t for t, i in zip(line.tokens, ids, strict=True) if i == UNK) if line is not None else None
    for i in ids:
        if i != UNK:
            tokens.append(vocab.words[i])
            continue
        token = next(unknown) if unknown is not None else None
        tokens.append(side.words.code(code, token, lambda word: side.spell_word(code, word)))
    return tokens


def code_side(code: Code, side: SideModels, vocab: Vocabulary, ids: list[int], line: Line | None) -> Line:
    """Code (or, with ``line`` None, decode) what restores a line from its token ids; return the line."""
    tokens = code_words(code, side, vocab, ids, line)
    cases, verbatim = code_cases(code, side, line, tokens)
    return Line(tuple(tokens), tuple(cases), tuple(verbatim), tuple(code_gaps(code, side, line, tokens)))
