"""The side information of lossless text (latcomp.text.statistics, latcomp.text.side): statistics learned
deterministically from training text, exact round trips, and cheaper side information than adaptive models alone."""

import json
import random

import constriction
import numpy as np
import pytest
from test_text_tokenizer import AWKWARD

from latcomp.text.codec import Reader, Recorder
from latcomp.text.side import CharModel, SideModels, code_cases, code_gaps, code_side, code_words
from latcomp.text.statistics import SideStatistics
from latcomp.text.tokenizer import lex, split_lines, tokenize
from latcomp.text.vocabulary import Vocabulary, VocabularyError

RARE = ["Zyzzyva", "quokka", "Xanadu", "fjord", "gnomon", "syzygy"]


def corpus(n: int, seed: int) -> list[str]:
    """Training-like sentences: common words, names, marks, quotes, and rare words (unknown to the vocabulary)."""
    rng = random.Random(seed)
    common = "the cat saw a dog and it ran to my house".split()
    lines = []
    for _ in range(n):
        words = [rng.choice(common) for _ in range(rng.randrange(3, 9))] + [rng.choice(RARE)]
        rng.shuffle(words)
        line = words[0].capitalize() + " " + " ".join(words[1:]) + rng.choice([".", "!", "?"])
        lines.append('"' + line + '"' if rng.random() < 0.2 else line)
    return lines


@pytest.fixture(scope="module")
def vocab():
    train = corpus(300, 0)
    return Vocabulary.build([tokenize(s) for s in train], 14).with_side(train)


def side_bits(vocab: Vocabulary, text: str, stats: SideStatistics | None) -> dict[str, float]:
    """Ideal bits of a text's spellings, cases and gaps with ``stats`` (None: adaptive only)."""
    recorders, side = {part: Recorder() for part in ("spellings", "cases", "gaps")}, SideModels(stats)
    for line in map(lex, split_lines(text)[0]):
        tokens = code_words(recorders["spellings"].code, side, vocab, vocab.ids(line.tokens), line)
        code_cases(recorders["cases"].code, side, line, tokens)
        code_gaps(recorders["gaps"].code, side, line, tokens)
    return {part: -sum(np.log2(p[s] / p.sum()) for s, p in rec.items) for part, rec in recorders.items()}


def test_statistics_are_derived_deterministically_from_the_training_text(vocab):
    train = corpus(300, 0)
    shuffled = random.Random(1).sample(train, len(train))
    again = vocab.with_side(shuffled)
    assert again.to_json() == vocab.to_json()                      # same sentences, any order: the same file
    assert Vocabulary.from_json(vocab.to_json()).to_json() == vocab.to_json()
    stats = vocab.side
    known = [w for w in RARE if vocab.known(w.lower())]
    assert set(stats.unknown) == {w.lower() for w in RARE} - {w.lower() for w in known}
    assert sum(stats.unknown.values()) == sum(t in stats.unknown for s in train for t in tokenize(s))
    inside = [lex(s) for s in train]
    xanadu = sum(line.cases[i] == 1 for line in inside for i, t in enumerate(line.tokens) if t == "xanadu" and i > 0)
    assert stats.cases["xanadu"][1] == xanadu > 0                 # a name: capital inside sentences
    assert "the" not in stats.cases                                # always lower inside: not listed
    assert stats.case_table.sum() == sum(len(line.tokens) - line.tokens.count(".") - line.tokens.count("!")
                                         - line.tokens.count("?") for line in inside)
    assert vocab.with_side(train[:-1]).to_json() != vocab.to_json()


def test_side_information_is_cheaper_with_the_statistics_on_repeated_rare_words(vocab):
    text = "\n".join(corpus(40, 5)) + "\n"
    learned, adaptive = side_bits(vocab, text, vocab.side), side_bits(vocab, text, None)
    unknown = sum(not vocab.known(t) for s in split_lines(text)[0] for t in tokenize(s))
    assert unknown >= 30
    assert learned["spellings"] / unknown < 0.5 * adaptive["spellings"] / unknown    # bits per unknown word
    for part in ("cases", "gaps"):
        assert learned[part] < adaptive[part]


@pytest.mark.parametrize("statistics", [True, False], ids=["statistics", "adaptive-only"])
@pytest.mark.parametrize("text", [t[:3_000] for t in AWKWARD] + ["\n".join(corpus(30, 9))], ids=range(len(AWKWARD) + 1))
def test_side_information_round_trips_exactly(vocab, text, statistics):
    stats = vocab.side if statistics else None
    lines = [lex(row) for row in split_lines(text)[0]]
    recorder, side = Recorder(), SideModels(stats)
    for line in lines:
        code_side(recorder.code, side, vocab, vocab.ids(line.tokens), line)
    coder = constriction.stream.stack.AnsCoder()
    recorder.push(coder)
    reader, side = Reader(coder, 10**7, 0), SideModels(stats)
    assert [code_side(reader.code, side, vocab, vocab.ids(line.tokens), None) for line in lines] == lines
    assert coder.is_empty()


def test_the_character_model_counts_as_if_built_word_by_word():
    words = ["quokka", "fjord", "x", "don't", "a1b2", "fjords"]
    built, grown = CharModel(words), CharModel([])
    for w in words:
        grown.add(w)
    rng = np.random.default_rng(0)
    for history in [[44] * 4, [44] * 4 + [5], *(list(rng.integers(0, 45, 7)) for _ in range(20))]:
        p = built.probabilities(history)
        np.testing.assert_array_equal(p, grown.probabilities(history))
        assert np.all(p >= 1) and np.all(p == np.floor(p))


@pytest.mark.parametrize("damage", [
    lambda d: d["side"].update(unknown=[[3, "Not-A-Token"]]),
    lambda d: d["side"].update(unknown=[[-1, "word"]]),
    lambda d: d["side"].update(cases={"1,2": "word"}),
    lambda d: d["side"].update(case_table=[[1, 2]]),
    lambda d: d["side"].update(gaps={"999": [[" ", 1]]}),
    lambda d: d["side"].update(gaps={"0": [["word", 1]]}),
    lambda d: d["side"].pop("gaps"),
    lambda d: d.update(side=[]),
])
def test_malformed_statistics_are_one_vocabulary_error(vocab, damage):
    data = json.loads(vocab.to_json())
    damage(data)
    with pytest.raises(VocabularyError):
        Vocabulary.from_json(json.dumps(data))
