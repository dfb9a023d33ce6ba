"""The lossless text tokenizer, the vocabulary and the corpus loader (latcomp.text)."""

import json

import pytest
from conftest import real_data_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from latcomp.data import DataError
from latcomp.text.corpus import load_sentences
from latcomp.text.tokenizer import CAPITAL, LOWER, UPPER, VERBATIM, join_lines, lex, split_lines, tokenize
from latcomp.text.vocabulary import SPECIALS, UNK, Vocabulary, VocabularyError

AWKWARD = [
    "",
    "\n",
    "\n\n\n",
    "Hello, World!\n",
    "no final newline",
    "CRLF line\r\nsecond\r\n",
    "\ttabs\tand  double  spaces  ",
    "trailing spaces   \n   leading",
    "Ünïcödé, naïve café — “curly” 日本語 😀 and \u0130stanbul\n",
    "McDonald's iPhone DNA I don't 'Tis o'er ’tis\n",
    "zzqxv unknownword Xyzzy!!! ??? ...",
    "\x00\x07\x08 control \x7f \u2028 separators \ufeff\n",
    "word " * 5000 + "\n",
    "a" * 100_000,
    "'''''",
    "isn't'  '",
]


@pytest.fixture
def shared_text():
    """The real data folder holding text/; skips when the corpus is absent."""
    path = real_data_dir()
    if not (path / "text" / "valid.raw.txt").exists():
        pytest.skip(f"text corpus not found in {path}/text (set LATCOMP_DATA)")
    return path


def round_trip(text: str) -> str:
    lines, final = split_lines(text)
    return join_lines([lex(line).text() for line in lines], final)


@pytest.mark.parametrize("text", AWKWARD, ids=range(len(AWKWARD)))
def test_awkward_texts_round_trip(text):
    assert round_trip(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_any_text_round_trips(text):
    assert round_trip(text) == text
    assert text.encode("utf-8").decode("utf-8") == round_trip(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aAbBzZ09' .,;:!?\t\r-\"é", max_size=60))
def test_ascii_heavy_text_round_trips_and_tokens_are_canonical(text):
    for line in split_lines(text)[0]:
        parsed = lex(line)
        assert parsed.text() == line
        assert list(parsed.tokens) == tokenize(line)
        assert all(t == t.lower() for t in parsed.tokens)
        assert len(parsed.gaps) == len(parsed.tokens) + 1


def test_cases_are_the_first_rule_that_fits():
    line = lex("the The THE McDonald I 42 x.")
    assert line.tokens == ("the", "the", "the", "mcdonald", "i", "42", "x", ".")
    assert line.cases == (LOWER, CAPITAL, UPPER, VERBATIM, CAPITAL, LOWER, LOWER, LOWER)
    assert line.verbatim == ("McDonald",)
    assert line.gaps == ("", " ", " ", " ", " ", " ", " ", "", "")


def test_non_ascii_letters_are_gaps_not_tokens():
    line = lex("café İx")
    assert line.tokens == ("caf", "x")
    assert line.gaps == ("", "é İ", "")      # ASCII case mapping never touches "İ" (its lower() has 2 chars)


def test_split_lines_keeps_carriage_returns_and_the_final_newline():
    assert split_lines("a\r\nb\r\n") == (["a\r", "b\r"], True)
    assert split_lines("") == ([""], False)
    assert split_lines("x\n\n") == (["x", ""], True)
    with pytest.raises(ValueError):
        lex("two\nlines")


def test_vocabulary_is_deterministic_ranked_and_json():
    sentences = [["b", "a", "c"], ["a", "b"], ["a", "d"], ["c", "b"]]
    vocab = Vocabulary.build(sentences, size=3)
    assert vocab.words == SPECIALS + ("a", "b", "c")   # a 3, b 3 (tie by string), c 2; d dropped
    assert vocab.ids(["c", "d", "a"]) == [6, UNK, 4]
    assert Vocabulary.build(list(reversed(sentences)), size=3).words == vocab.words
    again = Vocabulary.from_json(vocab.to_json())
    assert again.words == vocab.words and json.loads(vocab.to_json())["format"] == "latcomp-vocabulary"


@pytest.mark.parametrize("words", [["a"], [*SPECIALS, "a", "a"], [*SPECIALS, "Caps"], [*SPECIALS, "two words"],
                                   [*SPECIALS, 3]])
def test_bad_vocabularies_are_refused(words):
    with pytest.raises(VocabularyError):
        Vocabulary(words)
    with pytest.raises(VocabularyError):
        Vocabulary.from_json(json.dumps({"format": "latcomp-vocabulary", "words": words}))


def test_missing_corpus_names_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LATCOMP_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"text corpus file train.raw.txt is missing.*LATCOMP_DATA"):
        load_sentences("train", tmp_path)


def test_altered_corpus_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LATCOMP_DATA", str(tmp_path))
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "valid.raw.txt").write_text("not the corpus\n")
    with pytest.raises(DataError, match="SHA-256"):
        load_sentences("valid", tmp_path)


def test_real_corpus_tokenizes_as_its_tokenized_files(shared_text):
    raw = load_sentences("valid", shared_text)
    tokenized = (shared_text / "text" / "valid.txt").read_text(encoding="utf-8").splitlines()
    assert len(raw) == len(tokenized) == 6431
    assert all(" ".join(tokenize(r)) == t for r, t in zip(raw, tokenized, strict=True))
    assert all(lex(r).text() == r for r in raw)
