"""Side-information share of the hyperprior photo models on Kodak.

Run ``python -m benchmarks.hyper_side [MODEL_DIR ...] --data-dir ../shared/data``. For every model
(default: the shipped ``models/photo-hyper-q1`` … ``q5``) and every Kodak image it writes the real file
(:func:`latcomp.photo.codec.compress`, the seed of :func:`latcomp.measure.photo_bench.image_seed`) and
computes the ideal code lengths of its two parts, −log2 P of the hyper-latent's points k_z under the
static code and of the main latent's points k under the conditional code with the scales the decoder
derives from k_z. Reported per model: bits per pixel of the file, of the hyper-latent (side information) and
of the main latent, the side information's share of the ideal total, and the file's overhead over the
ideal total (ANS, header), and the coordinates the ideal charges more than the coder can: constriction
quantizes every probability to 24 bits with a floor of 2^−24 per symbol, so a coordinate the prior
thought almost impossible (ideal cost over 24 bits) costs about 24 bits in the file (plus its escape), not
its ideal. Writes ``docs/results/hyper-side.{json,md}``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.entropy.lattice_code import PRECISION
from latcomp.families.photo import latent_size
from latcomp.measure.kodak import data_line, load_kodak
from latcomp.measure.photo_bench import default_models, image_seed
from latcomp.measure.results import machine_info, write_results
from latcomp.modelfile import read_config
from latcomp.photo import hyper_codec
from latcomp.photo.codec import compress, padded
from latcomp.runtime.model import load_model


def ideal_bits(net: hyper_codec.NumpyPhotoHyperprior, img: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    """(bits of the hyper-latent, bits of each coordinate of the main latent) of one image coded with ``seed``,
    ideal lengths."""
    shape = latent_size(*img.shape[:2])
    y = net.encode_pixels(padded(img))
    z = net.hyper_encode(y, *shape)
    u_z = net.hyper.seeded_dither(seed, len(z), hyper_codec.hyper_start(net, len(y)))
    k_z = net.hyper.quantize(z, u_z)
    u = net.latent.seeded_dither(seed, len(y))
    k = net.latent.quantize(y, u)
    prior = net.priors(net.hyper.reconstruct(k_z, u_z), [shape])
    return float(-net.hyper.code.log2_prob(k_z, u_z).sum()), -net.latent.code.log2_prob(k, u, prior)


def measure(model_dir: str, images: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    m = load_model(model_dir)
    pixels = sum(img.shape[0] * img.shape[1] for _, img in images)
    file_bits = side = main = floor_excess = 0.0
    coordinates = surprises = 0
    for _, img in images:
        seed = image_seed(img)
        file_bits += 8 * len(compress(img, m, seed=seed))
        z_bits, y_bits = ideal_bits(m.net, img, seed)
        side, main = side + z_bits, main + float(y_bits.sum())
        over = y_bits[y_bits > PRECISION]
        coordinates, surprises = coordinates + y_bits.size, surprises + over.size
        floor_excess += float((over - PRECISION).sum())
    return {"model": Path(model_dir).name, "lam": read_config(model_dir)["hparams"]["lam"],
            "file_bpp": file_bits / pixels, "side_bpp": side / pixels, "main_bpp": main / pixels,
            "side_share": side / (side + main), "overhead": file_bits / (side + main) - 1,
            "surprise_share": surprises / coordinates, "floor_excess_share": floor_excess / (side + main)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="photo-hyperprior model directories (default: the shipped ones)")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    images, data = load_kodak(args.data_dir)
    rows = [measure(str(d), images) for d in (args.models or default_models())]
    command = shlex.join(["python", "-m", "benchmarks.hyper_side", *(argv if argv is not None else sys.argv[1:])])
    lines = ["# Side information of the hyperprior photo models on Kodak", "",
             f"Command: `{command}`  ", data_line(data), "",
             "Bits per pixel of the whole files (headers included), and the ideal code lengths of the hyper-latent "
             "(side information) and of the main latent under the scales the decoder derives from it.", "",
             "*Over 24 bits*: the share of the main latent's coordinates whose ideal cost exceeds 24 bits (the coder's "
             "floor 2^−24 caps what they cost in the file at about 24 bits and their escape), and their ideal bits "
             "beyond 24 as a share of the ideal total: the reason a file can be shorter than its ideal length.", "",
             "| model | λ | file bpp | side bpp | main bpp | side share | file over ideal | over 24 bits | "
             "their excess |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['lam']:g} | {r['file_bpp']:.4f} | {r['side_bpp']:.4f} | {r['main_bpp']:.4f} | "
              f"{100 * r['side_share']:.1f}% | {100 * r['overhead']:+.2f}% | {100 * r['surprise_share']:.3f}% | "
              f"{100 * r['floor_excess_share']:.2f}% |" for r in rows]
    write_results("hyper-side", {"rows": rows, "data": data, "machine": machine_info()}, "\n".join(lines) + "\n",
                  command)


if __name__ == "__main__":
    main()
