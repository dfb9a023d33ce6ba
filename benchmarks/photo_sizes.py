"""Photo sizes benchmark: time and peak memory of ``latcomp encode`` / ``decode`` from a Kodak image to the limit.

Run ``python -m benchmarks.photo_sizes`` (``--help`` for options). Each test image is a mosaic of
the 24 Kodak images (landscape, tiled row by row, cut at the right and bottom edges), so that
every size has photographic content. For each size it runs, in a fresh interpreter each,

    latcomp encode IMAGE.png -o IMAGE.lat -q Q --seed 1
    latcomp decode IMAGE.lat -o OUT.png

and records the wall time (process start-up, PNG reading and writing included), the peak
resident set size (VmHWM) and the file's bits per pixel; the decoded PNG is checked to have
the image's size. The transforms work in bands of :data:`latcomp.photo.network.BAND_PIXELS`
pixels, so the memory grows with the latent and the image buffers (tens of bytes per pixel),
not with the network's activations (hundreds). Writes ``docs/results/photo-sizes.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.hostile import cli_process, code_version
from latcomp.measure.kodak import load_kodak
from latcomp.measure.results import machine_info, write_results
from latcomp.photo.codec import MAX_PHOTO_PIXELS
from latcomp.photo.network import BAND_PIXELS

REPO = Path(__file__).resolve().parents[1]
#: (width, height): a Kodak image, 4K UHD, a 24-megapixel camera and the largest image the photo codec takes
#: (2^25 pixels).
SIZES = ((768, 512), (3840, 2160), (6000, 4000), (8192, 4096))


def mosaic(tiles: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """A (height, width, 3) image tiled row by row with ``tiles`` (all of one shape), cut at the edges."""
    th, tw = tiles[0].shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    for i, (top, left) in enumerate((t, s) for t in range(0, height, th) for s in range(0, width, tw)):
        tile = tiles[i % len(tiles)]
        out[top:top + th, left:left + tw] = tile[:height - top, :width - left]
    return out


def landscape_kodak(data_dir: str | None) -> list[np.ndarray]:
    """The Kodak images, portrait ones turned to landscape (768 × 512)."""
    images, _ = load_kodak(data_dir)
    return [im if im.shape[0] < im.shape[1] else np.ascontiguousarray(im.transpose(1, 0, 2)) for _, im in images]


def measure_size(tiles: list[np.ndarray], width: int, height: int, quality: int, tmp: Path) -> dict[str, Any]:
    """Encode and decode one mosaic of ``width`` × ``height`` with the CLI in fresh processes."""
    png, lat, out = tmp / f"{width}x{height}.png", tmp / f"{width}x{height}.lat", tmp / f"{width}x{height}-out.png"
    Image.fromarray(mosaic(tiles, width, height)).save(png, compress_level=1)
    enc = cli_process("encode", str(png), "-o", str(lat), "-q", str(quality), "--seed", "1", "--quiet")
    dec = cli_process("decode", str(lat), "-o", str(out), "--quiet")
    with Image.open(out) as decoded:
        size_ok = decoded.size == (width, height)
    pixels = width * height
    row = {"width": width, "height": height, "pixels": pixels, "bpp": 8 * lat.stat().st_size / pixels,
           "encode_s": enc["process_seconds"], "encode_max_rss_mib": enc["process_max_rss_mib"],
           "decode_s": dec["process_seconds"], "decode_max_rss_mib": dec["process_max_rss_mib"],
           "decoded_size_ok": size_ok}
    for path in (png, lat, out):
        path.unlink()
    return row


def to_markdown(res: dict[str, Any], command: str) -> str:
    mach = res["machine"]
    lines = ["# Photo sizes: time and peak memory of the CLI from a Kodak image to the limit", "",
             f"Command: `{command}`  ",
             f"Code: {res['code_version']}; machine: {mach['cpu']}, {mach['cpu_count']} CPUs"
             + (f" ({res['note']})" if res["note"] else "") + f"; OMP_NUM_THREADS={res['threads']}  ",
             f"Images: mosaics of the 24 Kodak images; model: the shipped one of `-q {res['quality']}`; bands of "
             f"{res['band_pixels']} pixels; limit {res['max_photo_pixels']} pixels per image.", "",
             "Each command runs in a fresh interpreter: wall seconds include start-up and PNG reading/writing; "
             "peak memory is the process's VmHWM.", "",
             "| image | pixels | bpp | encode s | encode peak MiB | decode s | decode peak MiB "
             "| bytes/pixel (decode) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["sizes"]:
        lines.append(f"| {r['width']}×{r['height']} | {r['pixels']} | {r['bpp']:.3f} | {r['encode_s']:.1f} | "
                     f"{r['encode_max_rss_mib']:.0f} | {r['decode_s']:.1f} | {r['decode_max_rss_mib']:.0f} | "
                     f"{r['decode_max_rss_mib'] * 2**20 / r['pixels']:.0f} |")
    return "\n".join(lines + ["", "Raw numbers: `photo-sizes.json` beside this file.", ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photo_sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None,
                        help="data root with kodak/ (default: $LATCOMP_DATA, else ../shared/data)")
    parser.add_argument("--quality", type=int, default=3, help="quality level of the shipped photo model")
    parser.add_argument("--largest", type=int, default=len(SIZES), help="measure only the first N sizes")
    parser.add_argument("--note", default="", help="what else the machine ran (stated in the report)")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "results"), help="where photo-sizes.{json,md} go")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "-m", "benchmarks.photo_sizes", *(sys.argv[1:] if argv is None else argv)])
    tiles = landscape_kodak(args.data_dir)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in SIZES[:args.largest]:
            rows.append(measure_size(tiles, width, height, args.quality, Path(tmp)))
            print(rows[-1], file=sys.stderr, flush=True)
    res = {"sizes": rows, "quality": args.quality, "band_pixels": BAND_PIXELS, "max_photo_pixels": MAX_PHOTO_PIXELS,
           "threads": os.environ.get("OMP_NUM_THREADS", "numpy default"), "note": args.note,
           "code_version": code_version(), "machine": machine_info()}
    js, md = write_results("photo-sizes", res, to_markdown(res, command), command, args.out_dir)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
