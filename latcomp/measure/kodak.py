"""The Kodak test images: where they are, their checksums, loading (the data of ``latcomp bench --photo``).

:func:`load_kodak` reads ``kodim*.png`` from ``--data-dir`` (the Kodak folder or a data root
holding ``kodak/``), else ``$LATCOMP_DATA``, else ``../shared/data``. A folder's ``SHA256SUMS``
file, if it has one, is checked (a mismatch is an error), and every image's decoded pixels are
compared with the Kodak originals' (:data:`KODAK_PIXELS_SHA256`, the same for every lossless
copy): other images are measured, but the report says that they are not the Kodak set.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from latcomp.data import DataError

#: The checkout's ``../shared/data`` (meaningful when latcomp runs from a source checkout).
_CHECKOUT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: SHA-256 of the decoded pixels (8-bit RGB, row by row) of the 24 Kodak images (PCD0992): the same for
#: every lossless copy, whatever its PNG chunks.
KODAK_PIXELS_SHA256 = {
    "kodim01": "a00210743353594464ac67e680a41710f484444ca5f9dfddeb570de25c428273",
    "kodim02": "ae5a495df4ec40e0941265440ccf98973915b4190ab803e37a23ca93dd43a07e",
    "kodim03": "234e61f585503f2a44400f5561131e8a512ef2c15328cd83d5cdbf10e2616cf2",
    "kodim04": "e88e788fca00e6c723bb66ff45edb8cb56091ee284dcb73e3909834f2c96eeb6",
    "kodim05": "ed3d1ee770909d3b27903b52ce19ee59a9bf24621a7bf1fb57b90677da880cb6",
    "kodim06": "7f45158999fa297d1cfbd292b3e2f3f5b27770701c3473155c211c3f512cc97f",
    "kodim07": "4e3664bf6fe865b49f15f7b554efa7dbecaf73ae0e8699f2e307bf07849f1264",
    "kodim08": "889c3740e4ed54ca53d11ae735a44d15fa24fe312b3bd1609a80618a4092c208",
    "kodim09": "f8453140e63a42301a6dbebb849a3cc40d34e4e59580eb1f372f7f5460df0dbe",
    "kodim10": "fabe11b5c4f028394e093a5b5907e5fabc8072da0d5334fb3a38547a7e1be842",
    "kodim11": "ab4dd9bf8431e717d33892b3ba03c63bfea3c7fa72c2610010de7df3c194c075",
    "kodim12": "f412db2168e599949aac26bd3264f111b23a684f30a21cfd320e9e95bc69bbae",
    "kodim13": "875703d56fb9396f478b5d7d3b18e2b77c17147a685c6dc2567e1c574aaf01e3",
    "kodim14": "2bd5029ee75ac1697542e5b05624e8afe186e3250abd7513d6a806b52084c2f0",
    "kodim15": "b5353e7511277009922ecbdebfc6418fec53aa1b2a08d44fc957a7540825697b",
    "kodim16": "ed21745fd32fce95cc2c6af7fc52b1b15e590c7a14ab18ab34bd65ecaf955ac7",
    "kodim17": "566bc866664e9b06dc86e2654051b454844efe17322dbf7e24156d8243f1943e",
    "kodim18": "3475af71066f3ca8206eb12cfc989ebe9c6e44820a96604e88ae018606e1f7bd",
    "kodim19": "7956408ef24222d37ac53f579bd24d5b2c3557b16c657e8b71c1b6ae9f18de1b",
    "kodim20": "666ce8f2db5566a123bb081e70618f6f4c4253df960f3b41bb9dcc3dd134f3cf",
    "kodim21": "2d6902daf7c4486b7c8c04d834091841a2b38c8f0c81cd7a963a6510b34a2a6a",
    "kodim22": "f430842120c108b67725ada96b8b7b2a914f6a0915eacd5595064c6c1a5d70a0",
    "kodim23": "81992a83592267e69125666f3e3e04c1819529b4c4c1e55fde0a6a741bac4219",
    "kodim24": "e3e3ccc3e795b82a3da66934409dfe98ce0f5aadc6d7767543c506453599bb98",
}


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where the Kodak folder is looked for: ``data_dir``; else ``$LATCOMP_DATA``; else ``../shared/data``
    (beside the source checkout, and relative to the working directory)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    if os.environ.get("LATCOMP_DATA"):
        return [Path(os.environ["LATCOMP_DATA"]).expanduser()]
    return list(dict.fromkeys([_CHECKOUT_DATA, Path("..", "shared", "data")]))


def kodak_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder with ``kodim*.png``: ``ROOT/kodak`` or ``ROOT`` itself for each root of :func:`data_roots`.

    Raises :class:`latcomp.data.DataError` with one line saying where it looked.
    """
    roots = data_roots(data_dir)
    for root in roots:
        for folder in (root / "kodak", root):
            if any(folder.glob("kodim*.png")):
                return folder
    where = " or ".join(f"{r / 'kodak'} or {r}" for r in roots)
    raise DataError(f"Kodak images (kodim01.png … kodim24.png) not found in {where}; "
                    "set LATCOMP_DATA to the data root or pass --data-dir")


def _check_sums(folder: Path, paths: Sequence[Path]) -> bool:
    """Check ``paths`` against ``folder/SHA256SUMS`` when it exists; True if checked, DataError on a mismatch."""
    sums_file = folder / "SHA256SUMS"
    if not sums_file.exists():
        return False
    sums = {}
    for line in sums_file.read_text().splitlines():
        if line.strip():
            digest, file_name = line.split(maxsplit=1)
            sums[file_name.lstrip("*")] = digest
    for p in paths:
        want = sums.get(p.name)
        if want is not None and hashlib.sha256(p.read_bytes()).hexdigest() != want:
            raise DataError(f"{p} does not match its sha256 in {sums_file}")
    return True


def pixels_sha256(img: np.ndarray) -> str:
    """SHA-256 (hex) of an image's pixels, row by row (as :data:`KODAK_PIXELS_SHA256` holds them)."""
    return hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest()


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when that is short, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return str(path.absolute())
    return rel if rel.count("..") <= 2 else str(path.absolute())


def load_kodak(data_dir: str | os.PathLike | None = None, limit: int | None = None
               ) -> tuple[list[tuple[str, np.ndarray]], dict[str, Any]]:
    """The Kodak images as (name, uint8 HxWx3) pairs in name order (the first ``limit``), and a description
    of the data: folder, count, pixels, whether SHA256SUMS was checked, and which images are not the
    Kodak originals (``not_kodak``, empty for the real set)."""
    from PIL import Image

    folder = kodak_dir(data_dir)
    paths = sorted(folder.glob("kodim*.png"))[:limit]
    checked = _check_sums(folder, paths)
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append((p.stem, np.asarray(im.convert("RGB"))))
    not_kodak = [name for name, img in images if KODAK_PIXELS_SHA256.get(name) != pixels_sha256(img)]
    return images, {"folder": _shown_path(folder), "images": len(images), "sha256_checked": checked,
                    "pixels": int(sum(img.shape[0] * img.shape[1] for _, img in images)), "not_kodak": not_kodak}


def data_line(data: dict[str, Any]) -> str:
    """One sentence on the data of a report (with a warning when the images are not the Kodak originals)."""
    line = (f"Data: {data['images']} images from `{data['folder']}` ({data['pixels']} pixels"
            + (", sha256 checked" if data.get("sha256_checked") else "") + ").")
    if data.get("not_kodak"):
        line += (f" **Not the Kodak originals**: the pixels of {', '.join(data['not_kodak'])} differ from them, "
                 "so these numbers are not comparable with published Kodak results.")
    return line
