"""The word vocabulary of the text autoencoder (Appendix A.2: 10k words), stored as JSON with the model.

Ids: the :data:`SPECIALS` first (padding, begin and end of sentence, unknown word), then the
``size`` most frequent canonical tokens of the training sentences, by decreasing count with ties
broken by the token's string order, so that the same sentences always give the same vocabulary.
The file may also hold the side statistics of lossless coding learned from the same training text
(``"side"``, :mod:`latcomp.text.statistics`; a vocabulary without them codes side information with
adaptive models alone).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from latcomp.fileio import atomic_write_text
from latcomp.text.statistics import SideStatistics, StatisticsError
from latcomp.text.tokenizer import TOKEN

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(len(SPECIALS))
#: The paper's vocabulary size (words besides the specials).
DEFAULT_SIZE = 10_000
FILE = "vocabulary.json"
FORMAT = "latcomp-vocabulary"
#: Bounds a vocabulary file must respect (it comes from outside like the weights).
MAX_WORDS, MAX_TOKEN_CHARS = 1 << 20, 1 << 10


class VocabularyError(ValueError):
    """A vocabulary file is malformed: wrong format, bad or duplicate tokens."""


class Vocabulary:
    """Canonical tokens ↔ ids; unknown tokens map to :data:`UNK`."""

    def __init__(self, words: Sequence[str], side: SideStatistics | None = None):
        self.words = tuple(words)
        _check(self.words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.side = side

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]], size: int = DEFAULT_SIZE) -> Vocabulary:
        """The specials and the ``size`` most frequent tokens of tokenized ``sentences`` (module docstring)."""
        counts = Counter(t for sentence in sentences for t in sentence)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(SPECIALS + tuple(w for w, _ in ranked[:size]))

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Token ids, :data:`UNK` for tokens outside the vocabulary."""
        return [self.index.get(t, UNK) for t in tokens]

    def known(self, token: str) -> bool:
        return token in self.index and self.index[token] >= len(SPECIALS)

    def with_side(self, sentences: Iterable[str]) -> Vocabulary:
        """This vocabulary with the side statistics of training ``sentences`` as written (one line each)."""
        return Vocabulary(self.words, SideStatistics.build(sentences, self.known))

    def to_json(self) -> str:
        data: dict = {"format": FORMAT, "words": list(self.words)}
        if self.side is not None:
            data["side"] = self.side.to_json_dict()
        return json.dumps(data, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise VocabularyError(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("words"), list):
            raise VocabularyError("not a latcomp vocabulary")
        try:
            side = SideStatistics.from_json_dict(data["side"]) if "side" in data else None
        except StatisticsError as exc:
            raise VocabularyError(str(exc)) from None
        return cls(data["words"], side)

    def save(self, directory: str | Path) -> None:
        atomic_write_text(Path(directory) / FILE, self.to_json())

    @classmethod
    def load(cls, directory: str | Path) -> Vocabulary:
        path = Path(directory) / FILE
        if not path.is_file() or path.stat().st_size > MAX_WORDS * (MAX_TOKEN_CHARS + 8):
            raise VocabularyError(f"{path}: missing or too large")
        return cls.from_json(path.read_text(encoding="utf-8"))


def _check(words: tuple[str, ...]) -> None:
    """Specials first, then distinct canonical tokens (what the tokenizer can produce), within bounds."""
    if words[:len(SPECIALS)] != SPECIALS:
        raise VocabularyError(f"a vocabulary starts with {', '.join(SPECIALS)}")
    if len(words) > MAX_WORDS or len(set(words)) != len(words):
        raise VocabularyError("too many or duplicate tokens")
    for w in words[len(SPECIALS):]:
        if not isinstance(w, str) or len(w) > MAX_TOKEN_CHARS or not TOKEN.fullmatch(w) or w != w.lower():
            raise VocabularyError(f"{str(w)[:40]!r} is not a canonical token")
