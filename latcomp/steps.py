"""Working in bounded steps: the row ranges that cover a count, so that temporaries stay small whatever the input.

The codecs, the latent codec's dither and quantizer and the photo transforms all loop over
such ranges (each with its own step size).
"""

from __future__ import annotations


def spans(count: int, step: int) -> list[tuple[int, int]]:
    """The ranges [a, b) of at most ``step`` (at least 1) rows covering 0 … ``count`` − 1, in order."""
    step = max(1, step)
    return [(a, min(a + step, count)) for a in range(0, count, step)]
