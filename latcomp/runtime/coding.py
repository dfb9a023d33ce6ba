"""What every codec does with a file, whatever its modality (Sections 3.2–3.3: the shared dither, the code of Ẑ).

* the **seed**: 64 bits per file (:func:`file_seed`), and the dithers it gives, read a slice of
  rows at a time (:class:`SeededDither`);
* **claims before work**: a header's claim that the payload cannot hold is refused before
  anything is decoded (:func:`check_payload_claim`), so decoding costs what the content costs;
* the **checked coder**: lattice coordinates are pushed and popped in chunks that never decode
  from an empty stream (:class:`CheckedCoder`, :func:`push_coordinates`, :func:`pop_coordinates`),
  and an exception of the entropy coder itself is one :class:`FormatError` (:func:`entropy_decoding`);
* the **content check**: a CRC of what was decoded (:func:`require_content`).

Everything the decoder recomputes (dither, entropy parameters) is bit-identical on every machine,
thread count and batch size; the CRC turns any residual mismatch into an error instead of a wrong
output.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import constriction
import numpy as np

from latcomp.container import payload_to_words, words_to_payload
from latcomp.entropy.lattice_code import STREAM_SLACK_BITS, SYMBOL_CHUNK, DitherRows
from latcomp.errors import CodecError, FormatError, InputError
from latcomp.latent_codecs import LaplaceRows, LatentCodec

#: ``progress(stage, done, total)`` is called while coding large batches.
Progress = Callable[[str, int, int], None]
#: Largest number of pixels N·H·W·C of one file in this implementation (docs/format.md, "Limits"):
#: 342,392 MNIST digits, 2 GiB as decoded float64 means. ``compress`` refuses more and ``decompress``
#: refuses such a header before it decodes anything.
MAX_PIXELS = 1 << 28


def file_seed(seed: int | None) -> int:
    """The 64-bit dither seed of a new file: ``seed`` checked, or a random one (InputError outside [0, 2^64))."""
    if seed is None:
        return secrets.randbits(64)
    if not 0 <= int(seed) < 2**64:
        raise InputError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


class SeededDither:
    """The dithers of a file's ``count`` rows, computed from the seed when a slice of rows is read.

    Reading ``u[a:b]`` gives ``latent.seeded_dither(seed, count, start)[a:b]`` bit for bit, without the
    N × dim float64 array (:class:`latcomp.entropy.lattice_code.DitherRows`); ``start`` is the file's first
    row of these dithers (e.g. a hyper-latent's, after the main latent's).
    """

    def __init__(self, latent: LatentCodec, seed: int, count: int, start: int = 0):
        self.latent, self.seed, self.count, self.start = latent, seed, count, start

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, step = rows.indices(self.count)
        if step != 1:
            raise IndexError("dithers are read by contiguous slices of rows")
        return self.latent.seeded_dither(self.seed, max(stop - start, 0), self.start + start)


def lazy_dither(latent: LatentCodec, seed: int, count: int, start: int = 0) -> DitherRows:
    """The dithers a decoder reads: computed from the seed a row block at a time as the stream reaches them, each
    once (kept as read for a lattice of several levels, whose every level reads every row), so a stream that
    ends early costs the rows it reached, never the ``count`` its header claims."""
    return latent.code.read_once(SeededDither(latent, seed, count, start))


def check_payload_claim(what: str, items: int, bits_per_item: float, payload_bytes: int) -> None:
    """Refuse (FormatError) ``items`` that need at least ``bits_per_item`` bits each in ``payload_bytes``:
    an ANS stream of P bytes holds at most 8·P + 64 bits. ``what`` names the items in the message."""
    if items * bits_per_item > 8 * payload_bytes + STREAM_SLACK_BITS:
        raise FormatError(f"corrupt header ({what} cannot fit in {payload_bytes} payload bytes)")


class CheckedCoder:
    """An ANS coder that codes the lattice coordinates in chunks and never decodes them from an empty stream.

    constriction decodes "for free" from an empty stream (the first symbol of every model, for
    ever), so a header that claims more items than its payload holds would make the decoder
    work through all of them. :meth:`decode` pops the coordinate symbols (the calls with
    parameter arrays) at most :data:`SYMBOL_CHUNK` at a time and raises ``error`` if the stream
    is empty before a chunk (the lattice code makes one call per chunk of a group's symbols).
    :meth:`encode_reverse` pushes the same chunks (the bytes are those of one call) and raises
    in the mirror position, so the encoder never writes a stream the decoder refuses (only
    coordinates of exactly −R at the end of the stream could make one: docs/format.md, "Empty
    stream"). Escapes and everything else go to the wrapped coder.
    """

    def __init__(self, coder: Any, error: CodecError):
        self.coder, self.error = coder, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.coder, name)

    @property
    def unchecked(self) -> Any:
        """The wrapped coder: for the calls that continue a chunk of :meth:`decode` (the format checks its start)."""
        return self.coder

    def _check(self) -> None:
        if self.coder.is_empty():
            # a new exception each time: raising ``self.error`` itself would give it a traceback through this
            # frame, a reference cycle that kept the decoder's arrays alive until the next full collection
            raise type(self.error)(*self.error.args)

    def decode(self, model: Any, *params: Any) -> np.ndarray:
        n = 0 if not params or np.ndim(params[0]) == 0 else len(params[0])  # not decode(model, count)
        if n == 0:
            return self.coder.decode(model, *params)
        out = None
        for start in range(0, n, SYMBOL_CHUNK):
            self._check()
            part = self.coder.decode(model, *(p[start:start + SYMBOL_CHUNK] for p in params))
            if out is None:
                out = np.empty(n, part.dtype)
            out[start:start + len(part)] = part
        return out

    def encode_reverse(self, symbols: np.ndarray, model: Any, *params: Any) -> None:
        if not params:
            return self.coder.encode_reverse(symbols, model)
        for start in reversed(range(0, len(symbols), SYMBOL_CHUNK)):
            stop = start + SYMBOL_CHUNK
            self.coder.encode_reverse(symbols[start:stop], model, *(p[start:stop] for p in params))
            self._check()


def new_coder() -> Any:
    """An empty ANS coder (a stack: what is pushed last is popped first)."""
    return constriction.stream.stack.AnsCoder()


def payload(coder: Any) -> bytes:
    """The payload bytes of an encoder's stream (:func:`latcomp.container.words_to_payload`)."""
    return words_to_payload(coder.get_compressed())


def push_coordinates(coder: Any, latent: LatentCodec, k: np.ndarray, u: Any, prior: LaplaceRows | None = None
                     ) -> None:
    """Push lattice coordinates with P(Ẑ|U) (the latent codec's, given ``prior`` if it is conditional) in
    checked chunks (:class:`CheckedCoder`)."""
    latent.push(CheckedCoder(coder, InputError(
        "these images cannot be coded: their last lattice coordinates lie exactly on the lower edge of the "
        "coded support, which would leave the stream empty (docs/format.md)")), k, u, prior)


def pop_coordinates(coder: Any, latent: LatentCodec, u: Any, prior: LaplaceRows | None = None) -> np.ndarray:
    """Pop lattice coordinates in checked chunks: a stream that ends before them is a :class:`FormatError`."""
    return latent.pop(CheckedCoder(coder, FormatError(
        "corrupt payload (the stream ends before the lattice coordinates it claims)")), u, prior)


@contextmanager
def entropy_decoding(data: bytes) -> Iterator[Any]:
    """A decoder of the payload ``data``; an exception of the entropy coder itself becomes a one-line
    :class:`FormatError`.

    constriction raises ValueError, AssertionError or PanicException (a BaseException) for
    impossible streams; our own errors and interrupts pass unchanged.
    """
    try:
        yield constriction.stream.stack.AnsCoder(payload_to_words(data))
    except (CodecError, KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:
        raise FormatError(f"corrupt payload (entropy decoder: {type(exc).__name__})") from None


def require_content(matches: bool) -> None:
    """The decoded content must match the file's content CRC (FormatError otherwise)."""
    if not matches:
        raise FormatError("decoded content does not match its checksum: the file is corrupt "
                          "(or was written by an incompatible latcomp)")
