"""The English sentence corpus of the text autoencoder (shared data ``text/``), checksum-verified.

One sentence a line, as written (``{split}.raw.txt``; the tokenized ``{split}.txt`` is the
:func:`latcomp.text.tokenizer.tokenize` of it). Splits ``train`` (116,797 sentences) and ``valid``
(6,431). The files are looked for in ``data_dir``, ``data_dir/text`` and ``$LATCOMP_DATA/text``
(else the per-user cache's ``text/``), and each is checked against its SHA-256 below before use.
"""

from __future__ import annotations

from pathlib import Path

from latcomp.data import DataError, default_data_dir, file_checksum
from latcomp.text.tokenizer import split_lines

SUBDIR = "text"
#: SHA-256 of the corpus files (the folder's SHA256SUMS).
CHECKSUMS = {
    "train.raw.txt": "211b24fbb552fdf6c39598497371b7e467f5389db9ddb1c124ad1179190d4c63",
    "valid.raw.txt": "85462af98e43fa1a9171185098d6a1ff7b8713621d83236222d971f33086a6ba",
    "train.txt": "6565774a10e1c1c33e9713d27f8bc17b15cb478641fb738a903821dc35e82e16",
    "valid.txt": "80d948f3afb238f13e3479fe52b396a9ee1e32be0ce7cbd8768a2a4a4125e84e",
}
SPLITS = ("train", "valid")
_VERIFIED: set[Path] = set()


def corpus_file(name: str, data_dir: str | Path | None = None) -> Path:
    """The path of corpus file ``name``, verified against :data:`CHECKSUMS` (DataError if absent or altered)."""
    bases = [Path(data_dir).expanduser()] if data_dir is not None else []
    folders = list(dict.fromkeys([*bases, *(b / SUBDIR for b in bases), default_data_dir() / SUBDIR]))
    for folder in folders:
        path = (folder / name).resolve()
        if path.is_file():
            if path not in _VERIFIED:
                if file_checksum(path) != CHECKSUMS[name]:
                    raise DataError(f"{path} does not have the expected SHA-256 (a damaged or different copy)")
                _VERIFIED.add(path)
            return path
    raise DataError(f"the text corpus file {name} is missing (looked in {', '.join(map(str, folders))}); the "
                    f"corpus is latcomp's shared data folder text/ (see docs/text.md): put it in $LATCOMP_DATA/text "
                    f"or pass --data-dir")


def load_sentences(split: str, data_dir: str | Path | None = None) -> list[str]:
    """The sentences of ``split`` as written, one string each (no newline)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    lines, _ = split_lines(corpus_file(f"{split}.raw.txt", data_dir).read_text(encoding="utf-8"))
    return lines
