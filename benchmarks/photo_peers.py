"""Photo benchmark, classical peers: JPEG, WebP, AVIF and JPEG XL on the 24 Kodak images.

Run ``python -m benchmarks.photo_peers`` (``--help`` for options). For every peer codec
(:data:`latcomp.measure.peers.CODECS`) and every setting of its sweep it encodes each image,
takes the real file size (the whole file, headers included) as 8·bytes/(H·W) bits per
pixel, decodes the file with the same library and measures PSNR-RGB and MS-SSIM against the
original, and the median encode and decode seconds of ``--repeats`` runs; every codec runs
on one thread. Per setting, as in the literature, bpp, PSNR and MS-SSIM are averaged over
the images. BD-rates against JPEG use those mean curves. Writes
``docs/results/photo-peers.json``, ``.md`` and the RD plot ``.png``.

The measuring, BD-rates and reports are :mod:`latcomp.measure.rd`'s; ``latcomp bench --photo``
measures latcomp's photo models against these peers (its ``--peers FILE.json`` reuses this
script's JSON instead of measuring them again).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from latcomp.data import DataError
from latcomp.measure.kodak import load_kodak
from latcomp.measure.peers import CODECS, codec_names, measure_peers
from latcomp.measure.rd import write_report
from latcomp.measure.results import RESULTS_DIR

__all__ = ["load_kodak", "main"]  # load_kodak: benchmarks/compressai_peer.py reads Kodak through this module

NAME = "photo-peers"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="the Kodak folder or a data root with kodak/ (default: $LATCOMP_DATA, else "
                             "../shared/data)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--codecs", default=None, help=f"comma-separated subset of: {', '.join(CODECS)}")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image and setting (median)")
    parser.add_argument("--note", default="", help="a remark on the machine for the report (e.g. its other load)")
    parser.add_argument("--out-dir", default=str(RESULTS_DIR), help=f"where {NAME}.{{json,md,png}} go")
    args = parser.parse_args(argv)
    try:
        names = codec_names(args.codecs) if args.codecs else None
    except ValueError as e:
        parser.error(str(e))
    try:
        images, data = load_kodak(args.data_dir, args.limit)
    except DataError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "-m", "benchmarks.photo_peers", *argv])
    curves, meta = measure_peers(images, names, args.repeats, log=lambda s: print(s, file=sys.stderr))
    meta = {**meta, "data": data, "note": args.note}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = write_report(curves, meta, command, out / f"{NAME}.json", out / f"{NAME}.md", out / f"{NAME}.png")
    print(paths[-1].read_text())
    print("wrote " + ", ".join(map(str, paths)), file=sys.stderr)


if __name__ == "__main__":
    main()
