"""Coding text with the text autoencoder: lattice points (lossy) and the two-part code of the text (lossless).

A text is split into lines (:func:`~latcomp.text.tokenizer.split_lines`); line n is one sentence
whose representation X_n = e_c(tokens) is quantized on the lattice with the file's shared-seed
dither, Z_n = K_Λ(X_n + U_n). One ANS stream holds, in the order the decoder pops them:

1. every line's lattice point k_n (:class:`~latcomp.entropy.lattice_code.LatticeCode`, P(Ẑ|U));
2. **lossless only**, line by line: the line's tokens, each coded with the decoder's next-token
   distribution given Z_n − U_n and the tokens before it (:func:`latcomp.text.network.frequencies`,
   exact on both sides), ending with ``<eos>`` — the two-part code of Section 3.3, whose
   length is rate + NLL; then what restores the text as written (:mod:`latcomp.text.tokenizer`):
   the spellings of unknown words, the cases and the gaps (:mod:`latcomp.text.side`, with the
   vocabulary's side statistics learned from the training text).

The side models are integer counts, the same on both sides; every symbol goes through
constriction's ``Categorical(perfect=False)`` with integer-valued probabilities. Lossy decoding
returns the decoder's sentence: greedy (most probable) tokens from the point alone, lower case,
joined by the usual gaps.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import constriction
import numpy as np

from latcomp.container import FIELDS_VERSION, Header, content_crc, pack, unpack, words_to_payload
from latcomp.errors import FormatError, LimitError, ModelMismatchError
from latcomp.modelfile import ModelFileError
from latcomp.runtime import coding
from latcomp.runtime.coding import pop_coordinates, push_coordinates
from latcomp.runtime.model import LoadedModel, ModelLike, check_model, load_model
from latcomp.text.network import NumpyTextModel, frequencies
from latcomp.text.side import SideModels, code_side
from latcomp.text.statistics import usual_gap
from latcomp.text.tokenizer import join_lines, lex, split_lines
from latcomp.text.vocabulary import BOS, EOS, UNK, Vocabulary, VocabularyError

#: Tokens the lossy decoder emits at most per line.
MAX_LOSSY_TOKENS = 64
#: Lines whose tokens are coded in lockstep, step by step across the lines (the stream's layout).
GROUP = 32
#: Lines the lossy decoder runs at once (its logits: this many rows of the vocabulary, float64).
LOSSY_ROWS = 256
#: Most lines a text file holds: decoding holds their lattice coordinates and dithers (2 · 8 · latent bytes a line,
#: 200 MB for the shipped models' 96 dimensions) whatever the header claims.
MAX_LINES = 1 << 17

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


# ----------------------------------------------------------------------------- symbol streams


class Recorder:
    """The encoder's side of a symbol stream: symbols and their probabilities in decoding order.

    A line's tokens are recorded as a deferred item, computed when pushed (their 10k-entry
    distributions are never all held at once).
    """

    def __init__(self) -> None:
        self.items: list[tuple[int, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]]] = []
        self.symbols = 0

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
            self.symbols += len(symbols)


class Reader:
    """The decoder's side: pops each symbol with the probabilities the encoder used.

    A text of B bytes in L lines is at most :func:`symbol_bound` symbols; a stream that asks for
    more (a corrupt file) is a FormatError instead of an endless loop.
    """

    def __init__(self, coder: constriction.stream.stack.AnsCoder, limit: int, token_limit: int):
        self.coder, self.left, self.tokens_left = coder, limit, token_limit

    def code(self, _symbol: int | None, probabilities: np.ndarray) -> int:
        return int(self.code_rows(probabilities[None])[0])

    def pop_tokens(self, frequencies: np.ndarray) -> np.ndarray:
        """Pop one token for each row of ``frequencies`` (n, vocabulary): tokens have their own, tighter bound,
        since each costs a decoder step."""
        self.tokens_left -= len(frequencies)
        if self.tokens_left < 0:
            raise FormatError("corrupt payload (it decodes to more tokens than the file holds)")
        return self.code_rows(frequencies)

    def code_rows(self, probabilities: np.ndarray) -> np.ndarray:
        """Pop one symbol for each row of ``probabilities`` (n, alphabet)."""
        self.left -= len(probabilities)
        if self.left < 0:
            raise FormatError("corrupt payload (it decodes to more text than the file holds)")
        return self.coder.decode(_CATEGORICAL, probabilities)


def symbol_bound(size: int, lines: int) -> int:
    """Most symbols a text of ``size`` UTF-8 bytes in ``lines`` lines can need: every token, spelled
    character, letter case and gap byte is at least one byte of the text, and each line and gap adds an
    end symbol or a flag (generously: 8 per byte and per line)."""
    return 8 * (size + lines) + 64


#: Most symbols a lossless payload may hold per bit of its stream, and the allowance of every payload. The
#: header's size is the writer's claim: without this bound a file of a few bytes claiming a gigabyte makes the
#: decoder pop symbols for hours (an ANS stream never runs dry). Genuine text costs far more than 1/64 bit a
#: symbol (0.4 symbols per bit on the validation sentences); the encoder refuses a text that would not decode.
SYMBOLS_PER_BIT, SYMBOL_ALLOWANCE = 64, 1 << 14
#: The same for tokens, which cost a decoder step (some milliseconds) each: at most 2 a bit, plus 64.
TOKENS_PER_BIT, TOKEN_ALLOWANCE = 2, 64


def payload_symbol_bound(words: int) -> int:
    """Most symbols the decoder pops from a lossless payload of ``words`` 32-bit words."""
    return SYMBOLS_PER_BIT * 32 * words + SYMBOL_ALLOWANCE


def payload_token_bound(words: int) -> int:
    """Most tokens (``<eos>`` included) the decoder pops from a lossless payload of ``words`` 32-bit words."""
    return TOKENS_PER_BIT * 32 * words + TOKEN_ALLOWANCE


# ----------------------------------------------------------------------------- the model's part


def groups(lines: int, size: int = GROUP) -> list[slice]:
    """The groups of ``size`` consecutive lines (:data:`GROUP`: those whose tokens are coded in lockstep)."""
    return [slice(start, min(start + size, lines)) for start in range(0, lines, size)]


def lockstep(model: NumpyTextModel, w: np.ndarray, choose: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    """Run the decoder over a group of lines in lockstep, given W = Z − U (n, latent): at each step the lines
    still running (in line order) get their exact next-token frequencies, ``choose(rows, frequencies)`` gives
    their tokens, and a line ends with ``<eos>``."""
    states, rows, tokens = model.start(w), np.arange(len(w)), np.full(len(w), BOS)
    while len(rows):
        states[:, rows], logits = model.step(states[:, rows], tokens[rows])
        tokens[rows] = choose(rows, frequencies(logits))
        rows = rows[tokens[rows] != EOS]


def code_tokens(reader: Reader, model: NumpyTextModel, w: np.ndarray) -> list[list[int]]:
    """Decode the token ids of a group of lines (:func:`lockstep`, each until ``<eos>``)."""
    out: list[list[int]] = [[] for _ in w]

    def choose(rows: np.ndarray, freq: np.ndarray) -> np.ndarray:
        tokens = reader.pop_tokens(freq)
        for n, token in zip(rows, tokens, strict=True):
            if token != EOS:
                out[n].append(int(token))
        return tokens

    lockstep(model, w, choose)
    return out


def token_symbols(model: NumpyTextModel, w: np.ndarray, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The encoder's view of :func:`code_tokens`: each line's ids then ``<eos>``, step by step over the lines
    still running, and their frequencies (teacher forcing)."""
    lines, step = [[*s, EOS] for s in ids], np.zeros(len(ids), np.int64)
    symbols, freqs = [], []

    def choose(rows: np.ndarray, freq: np.ndarray) -> np.ndarray:
        tokens = np.array([lines[n][step[n]] for n in rows], np.int32)
        step[rows] += 1
        symbols.append(tokens)
        freqs.append(freq)
        return tokens

    lockstep(model, w, choose)
    return np.concatenate(symbols), np.concatenate(freqs)


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
    return "".join(usual_gap(tokens, i) + t for i, t in enumerate(tokens))


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
        w, rec, side = model.latent.reconstruct(k, u), Recorder(), SideModels(vocab.side)
        for group in groups(len(lines)):
            rec.defer(lambda group=group: token_symbols(model, w[group], ids[group]))
            for n in range(group.start, group.stop):
                code_side(rec.code, side, vocab, ids[n], lines[n])
        rec.push(coder)
    push_coordinates(coder, model.latent, k, u)
    words = coder.get_compressed()
    tokens = sum(len(line) + 1 for line in ids)
    if lossless and (rec.symbols > payload_symbol_bound(len(words)) or tokens > payload_token_bound(len(words))):
        raise LimitError(f"this text is too repetitive for a lossless file ({rec.symbols} symbols, {tokens} "
                         f"tokens in {32 * len(words)} bits; at most {SYMBOLS_PER_BIT} symbols and "
                         f"{TOKENS_PER_BIT} tokens a bit decode safely)")
    return TextPayload(seed, len(lines), final, lossless, len(text.encode("utf-8")) if lossless else 0, words, k)


def decode_text(model: NumpyTextModel, vocab: Vocabulary, payload: TextPayload) -> str:
    """The text of a payload: exactly the input (lossless) or the decoder's sentences (lossy)."""
    return decode_coder(model, vocab, payload, constriction.stream.stack.AnsCoder(payload.words),
                        len(payload.words))[0]


def decode_coder(model: NumpyTextModel, vocab: Vocabulary, payload: TextPayload,
                 coder: constriction.stream.stack.AnsCoder, stream_words: int) -> tuple[str, np.ndarray]:
    """(the text, the lattice coordinates) of a payload whose stream is ``coder``, ``stream_words`` 32-bit words
    long (the payload's ``words`` are not read)."""
    # the dither is computed as the stream reaches its rows, Z − U a group of lines at a time
    u = coding.lazy_dither(model.latent, payload.seed, payload.lines)
    k = pop_coordinates(coder, model.latent, u)

    def w(lines: slice) -> np.ndarray:
        return model.latent.reconstruct(k[lines], u[lines])

    if not payload.lossless:
        rows = []
        for lines in groups(payload.lines, LOSSY_ROWS):
            for tokens in greedy_tokens(model, w(lines)):
                words = [vocab.words[t] for t in tokens[:np.argmax(tokens == EOS)] if t != UNK]
                rows.append(render_lossy(words))
        return join_lines(rows, payload.final_newline), k
    limit = min(symbol_bound(payload.size, payload.lines), payload_symbol_bound(stream_words))
    reader, side = Reader(coder, limit, payload_token_bound(stream_words)), SideModels(vocab.side)
    rows = [code_side(reader.code, side, vocab, line_ids, None).text()
            for group in groups(payload.lines) for line_ids in code_tokens(reader, model, w(group))]
    text = join_lines(rows, payload.final_newline)
    if len(text.encode("utf-8")) != payload.size:
        raise FormatError("corrupt payload (the decoded text does not have the size the file records)")
    return text, k


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
    if size > MAX_TEXT_BYTES or len(split_lines(text)[0]) > MAX_LINES:
        raise LimitError(f"a text file holds at most {MAX_TEXT_BYTES} bytes in {MAX_LINES} lines; split the text "
                         "into several files")
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
    if header.count > MAX_LINES:
        raise LimitError(f"the file claims {header.count} lines, more than the {MAX_LINES} a text file holds")
    coding.check_payload_claim("lattice points", header.count, m.latent.min_bits_per_item(), len(body))
    payload = TextPayload(header.seed, header.count, bool(flags), header.lossless, size, np.empty(0, np.uint32),
                          np.empty(0))
    with coding.entropy_decoding(body) as coder:
        text, k = decode_coder(m.net, vocab, payload, coder, -(-len(body) // 4))
        if not header.lossless and not coder.is_empty():
            raise FormatError("corrupt payload (data after the lattice coordinates)")
    coding.require_content((zlib.crc32(text.encode("utf-8")) if header.lossless else content_crc(k))
                           == header.content_crc)
    return text
