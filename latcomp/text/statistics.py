"""What the training text says about the side information of lossless text files (the ``side`` of ``vocabulary.json``).

Learned from the training sentences as written, once, by :meth:`SideStatistics.build`, and stored
with the vocabulary (so the model id covers it); both sides of the lossless code
(:mod:`latcomp.text.side`) read the same integer counts:

* **unknown**: every canonical token outside the vocabulary with its count (the lexicon of unknown
  words; its spellings also train the character model of new words);
* **cases**: for tokens that appear inside a sentence in a case other than ``lower`` there, their
  counts of the four cases inside a sentence; every token's *case class* is the most frequent of
  these (``lower`` for a token not listed), and **case_table** counts the cases of all tokens by
  (sentence start or not, case class);
* **gaps**: the counts of the gap strings in each gap context (:func:`gap_context`).

Everything is sorted, so the same sentences always give the same JSON.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.text.tokenizer import CASES, LOWER, TOKEN, Line, lex

#: Marks after which a word starts a sentence (the case model's context).
SENTENCE_ENDS = frozenset(".!?")
MARKS = frozenset(".,;:!?")
#: Gap contexts: position (start, inside, end) × next (word, mark, none) × previous (word, mark, none) ×
#: an unclosed double quote before × an unclosed parenthesis before.
GAP_CONTEXTS = 3 * 3 * 3 * 2 * 2
#: Bounds a statistics object from a file must respect (a count, strings per table).
MAX_COUNT, MAX_ENTRIES = 1 << 40, 1 << 20


class StatisticsError(ValueError):
    """The side statistics of a vocabulary file are malformed."""


def sentence_start(tokens: Sequence[str], i: int) -> int:
    """1 if token ``i`` starts a sentence (first of the line or after ``. ! ?``), else 0."""
    return int(i == 0 or tokens[i - 1] in SENTENCE_ENDS)


def has_case(token: str) -> bool:
    """Whether a token has letters (tokens without are ``lower`` by rule and carry no case)."""
    return any(c.isalpha() for c in token)


def gap_context(tokens: Sequence[str], gaps_before: Sequence[str], position: int) -> int:
    """The context of the gap before token ``position`` (``len(tokens)``: the line's last gap), 0 ≤ … <
    :data:`GAP_CONTEXTS`, from the neighbouring tokens and the gaps before it (``gaps_before``)."""
    count = len(tokens)
    where = 0 if position == 0 else 2 if position == count else 1
    after = 2 if position == count else int(tokens[position] in MARKS)
    before = 2 if position == 0 else int(tokens[position - 1] in MARKS)
    text = "".join(gaps_before)
    quote, paren = text.count('"') % 2, int(text.count("(") > text.count(")"))
    return (((where * 3 + after) * 3 + before) * 2 + quote) * 2 + paren


def usual_gap(tokens: Sequence[str], position: int) -> str:
    """The gap expected before token ``position`` (``len(tokens)``: after the last): none at the ends and
    before a mark, one space otherwise."""
    if position == 0 or position == len(tokens):
        return ""
    return "" if tokens[position] in MARKS else " "


@dataclass(frozen=True)
class SideStatistics:
    """Counts learned from training text (module docstring); empty ones leave the side models adaptive only."""

    unknown: Mapping[str, int]
    cases: Mapping[str, tuple[int, int, int, int]]
    case_table: np.ndarray               # (2, 4, 4) int64: [sentence start, case class, case]
    gaps: Mapping[int, Mapping[str, int]]

    @classmethod
    def empty(cls) -> SideStatistics:
        return cls({}, {}, np.zeros((2, 4, 4), np.int64), {})

    def case_class(self, token: str) -> int:
        """The most frequent case of ``token`` inside sentences in the training text (``lower`` if not listed)."""
        counts = self.cases.get(token)
        return LOWER if counts is None else int(np.argmax(counts))

    @classmethod
    def build(cls, sentences: Iterable[str], known: Callable[[str], bool]) -> SideStatistics:
        """The statistics of training ``sentences`` as written (one line each); ``known(token)``: in the vocabulary."""
        lines = [lex(s) for s in sentences]
        unknown = Counter(t for line in lines for t in line.tokens if not known(t))
        inside: dict[str, list[int]] = {}
        for line in lines:
            for i, (token, case) in enumerate(zip(line.tokens, line.cases, strict=True)):
                if has_case(token) and not sentence_start(line.tokens, i):
                    inside.setdefault(token, [0, 0, 0, 0])[case] += 1
        stats = cls(dict(unknown), {t: tuple(c) for t, c in inside.items() if sum(c) != c[LOWER]},
                    np.zeros((2, 4, 4), np.int64), {})
        gaps: dict[int, Counter[str]] = {}
        for line in lines:
            _count_line(stats, gaps, line)
        return cls(stats.unknown, stats.cases, stats.case_table, {c: dict(g) for c, g in gaps.items()})

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: tokens grouped by count (or case counts) in one string each, all sorted."""
        by_count: dict[int, list[str]] = {}
        for token, count in self.unknown.items():
            by_count.setdefault(count, []).append(token)
        by_cases: dict[str, list[str]] = {}
        for token, counts in self.cases.items():
            by_cases.setdefault(",".join(map(str, counts)), []).append(token)
        return {"unknown": [[c, " ".join(sorted(ts))] for c, ts in sorted(by_count.items(), reverse=True)],
                "cases": {k: " ".join(sorted(ts)) for k, ts in sorted(by_cases.items())},
                "case_table": self.case_table.tolist(),
                "gaps": {str(c): sorted(([g, n] for g, n in gaps.items()), key=lambda e: (-e[1], e[0]))
                         for c, gaps in sorted(self.gaps.items())}}

    @classmethod
    def from_json_dict(cls, data: Any) -> SideStatistics:
        """The inverse of :meth:`to_json_dict`, checked (StatisticsError)."""
        try:
            unknown = {t: _count(c) for c, tokens in _items(data["unknown"]) for t in _tokens(tokens)}
            cases = {t: _case_counts(k) for k, tokens in data["cases"].items() for t in _tokens(tokens)}
            table = np.array(data["case_table"], dtype=object)
            if table.shape != (2, 4, 4):
                raise StatisticsError("case_table is not 2 × 4 × 4")
            table = np.array([_count(n) for n in table.ravel()], np.int64).reshape(2, 4, 4)
            gaps = {_context(c): {_gap(g): _count(n) for g, n in _items(entries)}
                    for c, entries in data["gaps"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, StatisticsError):
                raise
            raise StatisticsError(f"malformed side statistics ({type(exc).__name__}: {exc})") from None
        if len(unknown) > MAX_ENTRIES or len(cases) > MAX_ENTRIES or sum(map(len, gaps.values())) > MAX_ENTRIES:
            raise StatisticsError("too many entries in the side statistics")
        return cls(unknown, cases, table, gaps)


def _count_line(stats: SideStatistics, gaps: dict[int, Counter[str]], line: Line) -> None:
    """Add a training line's cases (by start and case class) and gaps (by context) to the tables."""
    for i, (token, case) in enumerate(zip(line.tokens, line.cases, strict=True)):
        if has_case(token):
            stats.case_table[sentence_start(line.tokens, i), stats.case_class(token), case] += 1
    for pos, gap in enumerate(line.gaps):
        gaps.setdefault(gap_context(line.tokens, line.gaps[:pos], pos), Counter())[gap] += 1


def _items(value: Any) -> list[tuple[Any, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 2 for v in value):
        raise StatisticsError("expected a list of pairs")
    return [(a, b) for a, b in value]


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise StatisticsError(f"{str(value)[:40]!r} is not a count")
    return value


def _tokens(value: Any) -> list[str]:
    if not isinstance(value, str):
        raise StatisticsError("tokens are one space-separated string")
    tokens = value.split(" ")
    for t in tokens:
        if not TOKEN.fullmatch(t) or t != t.lower():
            raise StatisticsError(f"{t[:40]!r} is not a canonical token")
    return tokens


def _case_counts(key: Any) -> tuple[int, int, int, int]:
    parts = tuple(_count(int(p)) for p in str(key).split(","))
    if len(parts) != len(CASES) or not any(parts):
        raise StatisticsError(f"{str(key)[:40]!r} is not four case counts")
    return parts  # type: ignore[return-value]


def _context(key: Any) -> int:
    context = int(key)
    if not 0 <= context < GAP_CONTEXTS:
        raise StatisticsError(f"gap context {context} out of range")
    return context


def _gap(value: Any) -> str:
    if not isinstance(value, str) or TOKEN.search(value) or "\n" in value:
        raise StatisticsError(f"{str(value)[:40]!r} is not a gap")
    return value


def add_to_model(directory: str | Path, data_dir: str | Path | None = None) -> SideStatistics:
    """Learn the statistics from the corpus's training sentences and store them in the vocabulary file of the text
    model ``directory`` (this changes the model id: files written before no longer decode with it)."""
    from latcomp.text.corpus import load_sentences
    from latcomp.text.vocabulary import Vocabulary

    vocab = Vocabulary.load(directory).with_side(load_sentences("train", data_dir))
    vocab.save(directory)
    assert vocab.side is not None
    return vocab.side


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m latcomp.text.statistics",
                                     description="Add the side statistics of the training sentences to a text "
                                                 "model's vocabulary.json (docs/text.md).")
    parser.add_argument("model", help="text model directory")
    parser.add_argument("--data-dir", default=None, help="folder holding text/train.raw.txt")
    args = parser.parse_args(argv)
    stats = add_to_model(args.model, args.data_dir)
    print(f"{args.model}: {len(stats.unknown)} unknown words, {len(stats.cases)} cased tokens, "
          f"{sum(map(len, stats.gaps.values()))} gaps in {len(stats.gaps)} contexts")


if __name__ == "__main__":
    main()
