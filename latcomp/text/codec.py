"""Coding text with the text autoencoder: lattice points (lossy) and the two-part code of the text (lossless).

A text is split into lines (:func:`~latcomp.text.tokenizer.split_lines`); line n is one sentence
whose representation X_n = e_c(tokens) is quantized on the lattice with the file's shared-seed
dither, Z_n = K_Λ(X_n + U_n). One ANS stream holds, in the order the decoder pops them:

1. every line's lattice point k_n (:class:`~latcomp.entropy.lattice_code.LatticeCode`, P(Ẑ|U));
2. **lossless only**, line by line: the line's tokens, each coded with the decoder's next-token
   distribution given Z_n − U_n and the tokens before it (:func:`latcomp.text.network.frequencies`,
   exact on both sides), ending with ``<eos>`` — the two-part code of Section 3.3, whose
   length is rate + NLL; then what restores the text as written (:mod:`latcomp.text.tokenizer`):
   the spelling of unknown words (characters with an adaptive order-1 model), the case of each
   word (adaptive, in two contexts: sentence start or not), the letter cases of verbatim words,
   and the gaps (a flag "the usual gap" — nothing at the ends and before a mark, one space
   otherwise — then, if not, the gap's UTF-8 bytes with an adaptive byte model).

The adaptive models are integer counts, the same on both sides; every symbol goes through
constriction's ``Categorical(perfect=False)`` with integer-valued probabilities. Lossy decoding
returns the decoder's sentence: greedy (most probable) tokens from the point alone, lower case,
joined by the usual gaps.
"""

from __future__ import annotations

import itertools
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import constriction
import numpy as np

from latcomp.container import FIELDS_VERSION, MAX_COUNT, Header, content_crc, pack, unpack, words_to_payload
from latcomp.errors import FormatError, LimitError, ModelMismatchError
from latcomp.modelfile import ModelFileError
from latcomp.runtime import coding
from latcomp.runtime.coding import pop_coordinates, push_coordinates
from latcomp.runtime.model import LoadedModel, ModelLike, check_model, load_model
from latcomp.text.network import NumpyTextModel, frequencies
from latcomp.text.tokenizer import LOWER, VERBATIM, Line, join_lines, lex, split_lines
from latcomp.text.vocabulary import BOS, EOS, UNK, Vocabulary, VocabularyError

#: Characters of canonical tokens (the alphabet of unknown tokens' spellings, marks included), then the end symbol.
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789'.,;:!?"
END_CHAR = len(CHARS)
#: Marks after which a word starts a sentence (the case model's context).
SENTENCE_ENDS = frozenset(".!?")
MARKS = frozenset(".,;:!?")
#: Count added to an adaptive model's symbol each time it is coded (initial counts are 1).
INCREMENT = 24
#: Tokens the lossy decoder emits at most per line.
MAX_LOSSY_TOKENS = 64

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


@dataclass
class TextPayload:
    """What a text file holds besides its container header: the dither seed, the lines, the ANS words."""

    seed: int
    lines: int
    final_newline: bool
    lossless: bool
    #: UTF-8 bytes of the text (lossless; bounds what decoding may produce).
    size: int
    words: np.ndarray
    #: The lattice coordinates of the lines (what the lossy content CRC covers).
    coordinates: np.ndarray


class Adaptive:
    """Adaptive categorical counts over ``n`` symbols in ``contexts`` contexts (initial count 1 each)."""

    def __init__(self, n: int, contexts: int = 1):
        self.counts = np.ones((contexts, n))

    def probabilities(self, context: int = 0) -> np.ndarray:
        return self.counts[context].copy()

    def update(self, symbol: int, context: int = 0) -> None:
        self.counts[context, symbol] += INCREMENT


class SideModels:
    """The adaptive models of the text's side information (module docstring)."""

    def __init__(self) -> None:
        self.spelling = Adaptive(len(CHARS) + 1, len(CHARS) + 1)   # context: the previous character
        self.case = Adaptive(4, 2)                                  # context: sentence start
        self.letter = Adaptive(2, 2)                                # context: first letter of the word or not
        self.usual_gap = Adaptive(2, 3)                             # context: start, inside, end
        self.gap_byte = Adaptive(257, 3)                            # 256 bytes + end


# ----------------------------------------------------------------------------- symbol streams


class Recorder:
    """The encoder's side of a symbol stream: symbols and their probabilities in decoding order.

    A line's tokens are recorded as a deferred item, computed when pushed (their 10k-entry
    distributions are never all held at once).
    """

    def __init__(self) -> None:
        self.items: list[tuple[int, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]]] = []

    def code(self, symbol: int, probabilities: np.ndarray) -> int:
        self.items.append((symbol, probabilities))
        return symbol

    def defer(self, symbols: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        """Record symbols (int32 (n,)) and probabilities ((n, alphabet)) that ``symbols()`` computes at push time."""
        self.items.append(symbols)

    def push(self, coder: constriction.stream.stack.AnsCoder) -> None:
        """Push everything so that the decoder pops it in recorded order."""
        for item in reversed(self.items):
            symbols, p = item() if callable(item) else (np.array([item[0]], np.int32), item[1][None])
            coder.encode_reverse(symbols, _CATEGORICAL, p)


class Reader:
    """The decoder's side: pops each symbol with the probabilities the encoder used.

    A text of B bytes in L lines is at most :func:`symbol_bound` symbols; a stream that asks for
    more (a corrupt file) is a FormatError instead of an endless loop.
    """

    def __init__(self, coder: constriction.stream.stack.AnsCoder, limit: int):
        self.coder, self.left = coder, limit

    def code(self, _symbol: int | None, probabilities: np.ndarray) -> int:
        self.left -= 1
        if self.left < 0:
            raise FormatError("corrupt payload (it decodes to more text than the file holds)")
        return int(self.coder.decode(_CATEGORICAL, probabilities[None])[0])


def symbol_bound(size: int, lines: int) -> int:
    """Most symbols a text of ``size`` UTF-8 bytes in ``lines`` lines can need: every token, spelled
    character, letter case and gap byte is at least one byte of the text, and each line and gap adds an
    end symbol or a flag (generously: 8 per byte and per line)."""
    return 8 * (size + lines) + 64


Code = Callable[[int | None, np.ndarray], int]


def code_adaptive(code: Code, model: Adaptive, symbol: int | None, context: int = 0) -> int:
    """Code ``symbol`` (None when decoding) with an adaptive model and update it."""
    out = code(symbol, model.probabilities(context))
    model.update(out, context)
    return out


# ----------------------------------------------------------------------------- side information


def usual_gap(position: int, tokens: tuple[str, ...] | list[str]) -> str:
    """The gap expected before token ``position`` (``len(tokens)``: after the last)."""
    if position == 0 or position == len(tokens):
        return ""
    return "" if tokens[position] in MARKS else " "


def gap_context(position: int, count: int) -> int:
    return 0 if position == 0 else 2 if position == count else 1


def code_spelling(code: Code, side: SideModels, token: str | None) -> str:
    """An unknown word's canonical spelling, character by character then the end symbol."""
    chars, prev = [], END_CHAR
    symbols = None if token is None else [CHARS.index(c) for c in token] + [END_CHAR]
    for i in itertools.count():
        s = code_adaptive(code, side.spelling, None if symbols is None else symbols[i], prev)
        if s == END_CHAR:
            return "".join(chars)
        chars.append(CHARS[s])
        prev = s
    raise AssertionError("unreachable")


def code_case(code: Code, side: SideModels, line: Line | None, tokens: list[str]) -> tuple[list[int], list[str]]:
    """The case codes of the words (words without letters are lower by rule) and the verbatim spellings."""
    cases, verbatim = [], []
    spellings = iter(line.verbatim) if line is not None else None
    for i, token in enumerate(tokens):
        if not any(c.isalpha() for c in token):
            cases.append(LOWER)
            continue
        start = int(i == 0 or tokens[i - 1] in SENTENCE_ENDS)
        case = code_adaptive(code, side.case, None if line is None else line.cases[i], start)
        cases.append(case)
        if case == VERBATIM:
            surface = next(spellings) if spellings is not None else None
            letters = []
            for j, c in enumerate(token):
                if not c.isalpha():
                    letters.append(c)
                    continue
                upper = code_adaptive(code, side.letter, None if surface is None else int(surface[j].isupper()),
                                      int(j == 0))
                letters.append(c.upper() if upper else c)
            verbatim.append("".join(letters))
    return cases, verbatim


def code_gaps(code: Code, side: SideModels, line: Line | None, tokens: list[str]) -> list[str]:
    """Every gap of the line: the usual-gap flag, else the gap's UTF-8 bytes and an end symbol."""
    gaps = []
    for pos in range(len(tokens) + 1):
        context, usual = gap_context(pos, len(tokens)), usual_gap(pos, tokens)
        actual = None if line is None else line.gaps[pos]
        if code_adaptive(code, side.usual_gap, None if actual is None else int(actual == usual), context):
            gaps.append(usual)
            continue
        data = None if actual is None else list(actual.encode("utf-8")) + [256]
        out = bytearray()
        for i in itertools.count():
            b = code_adaptive(code, side.gap_byte, None if data is None else data[i], context)
            if b == 256:
                break
            out.append(b)
        try:
            gaps.append(out.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError("corrupt payload (a gap is not UTF-8)") from None
    return gaps


# ----------------------------------------------------------------------------- the model's part


def code_tokens(code: Code, model: NumpyTextModel, w: np.ndarray) -> list[int]:
    """Decode a line's token ids (until ``<eos>``) with the decoder's exact next-token frequencies given W = Z − U."""
    states, token, out = model.start(w[None]), BOS, []
    while True:
        states, logits = model.step(states, np.array([token]))
        token = code(None, frequencies(logits[0]))
        if token == EOS:
            return out
        out.append(token)


def token_symbols(model: NumpyTextModel, w: np.ndarray, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's view of :func:`code_tokens`: the ids then ``<eos>`` and their frequencies (teacher forcing)."""
    return np.array([*ids, EOS], np.int32), frequencies(model.teacher_forced(w, ids))


def greedy_tokens(model: NumpyTextModel, w: np.ndarray, limit: int = MAX_LOSSY_TOKENS) -> np.ndarray:
    """The decoder's most probable tokens given W (N, latent), ``<eos>`` after the end, (N, limit)."""
    states, token = model.start(w), np.full(len(w), BOS)
    out = np.full((len(w), limit), EOS)
    done = np.zeros(len(w), bool)
    for i in range(limit):
        states, logits = model.step(states, token)
        token = np.where(done, EOS, logits.argmax(-1))
        out[:, i] = token
        done |= token == EOS
        if done.all():
            break
    return out


def render_lossy(tokens: list[str]) -> str:
    """Lower-case tokens joined by the usual gaps."""
    return "".join(usual_gap(i, tokens) + t for i, t in enumerate(tokens))


# ----------------------------------------------------------------------------- files


def encode_text(model: NumpyTextModel, vocab: Vocabulary, text: str, seed: int,
                lossless: bool = False) -> TextPayload:
    """Compress ``text`` (any string) into a :class:`TextPayload`."""
    rows, final = split_lines(text)
    lines = [lex(row) for row in rows]
    ids = [vocab.ids(line.tokens) for line in lines]
    u = model.latent.seeded_dither(seed, len(lines))
    k = model.latent.quantize(model.encode(ids), u)
    coder = constriction.stream.stack.AnsCoder()
    if lossless:
        w, rec, side = model.latent.reconstruct(k, u), Recorder(), SideModels()
        for n, line in enumerate(lines):
            rec.defer(lambda n=n: token_symbols(model, w[n], ids[n]))
            code_side(rec.code, side, vocab, ids[n], line)
        rec.push(coder)
    push_coordinates(coder, model.latent, k, u)
    return TextPayload(seed, len(lines), final, lossless, len(text.encode("utf-8")) if lossless else 0,
                       coder.get_compressed(), k)


def decode_text(model: NumpyTextModel, vocab: Vocabulary, payload: TextPayload) -> str:
    """The text of a payload: exactly the input (lossless) or the decoder's sentences (lossy)."""
    return decode_coder(model, vocab, payload, constriction.stream.stack.AnsCoder(payload.words))[0]


def decode_coder(model: NumpyTextModel, vocab: Vocabulary, payload: TextPayload,
                 coder: constriction.stream.stack.AnsCoder) -> tuple[str, np.ndarray]:
    """(the text, the lattice coordinates) of a payload whose stream is ``coder`` (its ``words`` are not read)."""
    u = model.latent.seeded_dither(payload.seed, payload.lines)
    k = pop_coordinates(coder, model.latent, u)
    w = model.latent.reconstruct(k, u)
    if not payload.lossless:
        rows = []
        for tokens in greedy_tokens(model, w):
            words = [vocab.words[t] for t in tokens[:np.argmax(tokens == EOS)] if t != UNK]
            rows.append(render_lossy(words))
        return join_lines(rows, payload.final_newline), k
    reader, side = Reader(coder, symbol_bound(payload.size, payload.lines)), SideModels()
    rows = [code_side(reader.code, side, vocab, code_tokens(reader.code, model, w[n]), None).text()
            for n in range(payload.lines)]
    text = join_lines(rows, payload.final_newline)
    if len(text.encode("utf-8")) != payload.size:
        raise FormatError("corrupt payload (the decoded text does not have the size the file records)")
    return text, k


def code_side(code: Code, side: SideModels, vocab: Vocabulary, ids: list[int], line: Line | None) -> Line:
    """Code (or, with ``line`` None, decode) what restores a line from its token ids; return the line."""
    tokens = []
    unknown = iter(t for t, i in zip(line.tokens, ids, strict=True) if i == UNK) if line is not None else None
    for i in ids:
        tokens.append(code_spelling(code, side, next(unknown) if unknown is not None else None)
                      if i == UNK else vocab.words[i])
    cases, verbatim = code_case(code, side, line, tokens)
    return Line(tuple(tokens), tuple(cases), tuple(verbatim), tuple(code_gaps(code, side, line, tokens)))


# ----------------------------------------------------------------------------- files (container version 4)

#: The text's own header fields (container version 4): flags (bit 0: a final newline), the text's UTF-8 bytes.
FIELDS = struct.Struct("<BQ")
#: Most UTF-8 bytes of a text a file may hold (it is held in memory, with its tokens).
MAX_TEXT_BYTES = 1 << 30


def text_model(model: ModelLike) -> tuple[LoadedModel, Vocabulary]:
    """A loaded text model and its vocabulary (ModelMismatchError for a model of another modality)."""
    m = load_model(model)
    if m.modality != "text":
        raise ModelMismatchError(f"{m.directory} is a {m.family.name} model, not a text model")
    try:
        return m, Vocabulary.load(m.directory)
    except (VocabularyError, OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{m.directory}: vocabulary: {exc}") from None


def compress(text: str, model: ModelLike, lossless: bool = False, seed: int | None = None) -> bytes:
    """Compress ``text`` (any string) into one container: the lattice points of its lines, and with
    ``lossless`` the text itself (module docstring). Equal inputs and seeds give equal bytes."""
    m, vocab = text_model(model)
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES or len(split_lines(text)[0]) > MAX_COUNT:
        raise LimitError(f"a text file holds at most {MAX_TEXT_BYTES} bytes in {MAX_COUNT} lines")
    payload = encode_text(m.net, vocab, text, coding.file_seed(seed), lossless)
    crc = zlib.crc32(text.encode("utf-8")) if lossless else content_crc(payload.coordinates)
    header = Header(lossless=lossless, layout="batch", model_id=m.model_id, seed=payload.seed, payload_crc=0,
                    content_crc=crc, count=payload.lines, image_shape=(0, 0, 0), payload_bytes=0,
                    lattice=m.latent.lattice.spec,
                    fields=FIELDS.pack(int(payload.final_newline), payload.size))
    return pack(header, words_to_payload(payload.words))


def decompress(data: bytes, model: ModelLike) -> str:
    """The text of a container of :func:`compress`: the input exactly (lossless) or the decoder's sentences.

    FormatError for malformed or corrupt data, ModelMismatchError for a file of another model.
    """
    header, body = unpack(data)
    if header.version != FIELDS_VERSION or header.fields is None or len(header.fields) != FIELDS.size:
        raise ModelMismatchError("not a text file")
    m, vocab = text_model(model)
    check_model(header, m)
    flags, size = FIELDS.unpack(header.fields)
    if flags > 1 or size > MAX_TEXT_BYTES or (not header.lossless and size):
        raise FormatError("corrupt header (text fields)")
    coding.check_payload_claim("lattice points", header.count, m.latent.min_bits_per_item(), len(body))
    payload = TextPayload(header.seed, header.count, bool(flags), header.lossless, size, np.empty(0, np.uint32),
                          np.empty(0))
    with coding.entropy_decoding(body) as coder:
        text, k = decode_coder(m.net, vocab, payload, coder)
        if not header.lossless and not coder.is_empty():
            raise FormatError("corrupt payload (data after the lattice coordinates)")
    coding.require_content((zlib.crc32(text.encode("utf-8")) if header.lossless else content_crc(k))
                           == header.content_crc)
    return text
