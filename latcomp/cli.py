"""The ``latcomp`` command line: parses, shows progress, calls the library.

Every command is a thin wrapper: ``latcomp train`` is :func:`latcomp.train.train`.
Errors a user can cause (bad arguments, missing data, unreadable models, a full or
read-only disk, too little memory) are reported as one line on stderr with a
non-zero exit status; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from click.core import ParameterSource

from .data import DataError
from .distributed import PeerFailed
from .errors import CodecError
from .families import families, int_limit
from .modelfile import DEFAULT_PHOTO_QUALITY, PHOTO_QUALITIES, ModelFileError
from .schema import SchemaError, check_hparams
from .text.vocabulary import DEFAULT_SIZE as TEXT_VOCABULARY

#: The library's own exceptions for bad input, reported as one line (with OSError and MemoryError, see main).
USER_ERRORS: tuple[type[BaseException], ...] = (DataError, ModelFileError, CodecError)


class RichReporter:
    """Training progress (the ``progress`` callback of :func:`latcomp.train.train`): a live bar with the running
    means, one line per epoch (:func:`latcomp.progress.epoch_line`)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[metrics]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
        self.task: Any = None

    def __enter__(self) -> RichReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.progress.stop()

    def __call__(self, event: Any) -> None:
        from .progress import epoch_line, step_line

        if event.record is not None:
            self.console.print(epoch_line(event.record), markup=False, highlight=False)
            return
        text = step_line(event.metrics)
        if self.task is None:  # started with the first step: an error before it prints only its own line
            self.progress.start()
            self.task = self.progress.add_task("train", total=event.steps, epoch=event.epoch, metrics=text)
        self.progress.update(self.task, completed=event.step, total=event.steps, epoch=event.epoch, metrics=text)


#: The registered model families (:mod:`latcomp.families`; reading them does not import torch).
ARCHITECTURES = tuple(sorted(families()))
def _family_defaults() -> str:
    """The training defaults of the families that have their own (their specs'), for ``--arch``'s help."""
    groups: dict[str, list[str]] = {}
    for name, spec in sorted(families().items()):
        if spec.training:
            flags = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in spec.training.items())
            groups.setdefault(flags, []).append(name)
    return " ".join(f"{', '.join(names)} default to {flags}." for flags, names in groups.items())


#: Modules of the optional extras (pyproject.toml) → the extra that installs them.
OPTIONAL_MODULES = {"torch": "train", "matplotlib": "train", "bjontegaard": "bench", "imagecodecs": "bench"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="latcomp")
def cli() -> None:
    """latcomp: lattice-coded neural compression (dithered lattice VAEs, real bitstreams)."""


@cli.command()
@click.option("--dataset", type=click.Choice(["binarized-mnist", "dynamic-mnist", "image-folder"]),
              default="binarized-mnist", show_default=True,
              help="Static binarized MNIST (the paper's), seeded dynamic binarization, or (photo models, "
                   "their default) the images of --data-dir.")
@click.option("--arch", "architecture", type=click.Choice(ARCHITECTURES), default="lattice-vae",
              show_default=True, help="Model family (latcomp.families): the MNIST lattice VAE, a baseline, a photo "
                                      f"or a text model. {_family_defaults()}")
@click.option("--model", "deprecated_model", type=click.Choice(ARCHITECTURES), default=None, hidden=True,
              help="Deprecated name of --arch.")
@click.option("--levels", type=click.IntRange(2, int_limit("levels")), default=4, show_default=True,
              help="Words M per quantizer of the straight-through baselines (st-scalar, st-vector, text-st-*).")
@click.option("--commitment", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Straight-through baselines: commitment loss β·‖x − sg(q)‖² (VQ-VAE; 0: the paper's version).")
@click.option("--ema", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Straight-through baselines: EMA decay γ of the words, e.g. 0.99 (VQ-VAE; 0: words learned by "
                   "gradient, the paper's version).")
@click.option("--lattice", default="z", show_default=True, metavar="SPEC",
              help="Lattice of the lattice VAE's latent: z (rectangular), a2, d4, e8, bw16, leech, or blocks "
                   "such as e8*2 or leech+e8*2 (NAME tiles the latent; NAME*COUNT gives counts).")
@click.option("--lam", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Weight λ of the rate term (Eq. 3); 1 gives the ELBO.")
@click.option("--latent", type=click.IntRange(1, int_limit("latent")), default=40, show_default=True,
              help="Latent dimension m.")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True,
              help="Images per step (of all processes together under torchrun); at most the size of the "
                   "training set.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-4, show_default=True,
              help="Adam learning rate.")
@click.option("--lr-drop", type=click.IntRange(min=1), default=None, metavar="EPOCH",
              help="Step decay: from this epoch on the learning rate is a tenth of --lr (default: constant).")
@click.option("--max-epochs", type=click.IntRange(min=1), default=None, help="Stop after this many epochs.")
@click.option("--patience", type=click.IntRange(min=1), default=50, show_default=True,
              help="Stop after this many epochs without a better validation loss.")
@click.option("--channels", type=click.IntRange(1, int_limit("channels")), default=64, show_default=True,
              help="Photo model: hidden channels N of the convolutional transforms.")
@click.option("--crop", type=click.IntRange(16, 4096), default=128, show_default=True,
              help="Photo model: side of the random training crops (a multiple of 16).")
@click.option("--downscale", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Photo model: divide each training image's sides by this factor (box filter) before "
                   "cropping, e.g. 2 for JPEG sources; validation images are not downscaled.")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=250, show_default=True,
              help="Photo model: batches of random crops per epoch (one checkpoint and validation each).")
@click.option("--clip", type=click.FloatRange(min=0), default=0.0,
              help="Clip the gradient norm to this value (0: no clipping; photo default 1).")
@click.option("--init", type=click.Path(file_okay=False, exists=True), default=None, metavar="MODEL_DIR",
              help="Fine-tune: start from this model's weights (same network; a photo model may change --lam "
                   "and --lattice, its channels then regrouped by activity).")
@click.option("--text-size", type=click.Choice(["small", "paper"]), default="small", show_default=True,
              help="Text models (text-*): the GRU network's size (docs/text.md).")
@click.option("--vocab-size", type=click.IntRange(min=1), default=TEXT_VOCABULARY, show_default=True,
              help="Text models (text-*): the most frequent training words in the vocabulary; the others are "
                   "spelled by the side information of lossless files.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the dataset files (default: $LATCOMP_DATA, else download to the cache).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output model directory; must be new or empty unless --resume or --force.")
@click.option("--resume", is_flag=True,
              help="Continue the run in OUT from its checkpoint with its recorded settings (options given "
                   "here must agree with them, except --max-epochs).")
@click.option("--force", is_flag=True, help="Start over in a non-empty OUT, replacing the files of a previous run.")
@click.pass_context
def train(ctx: click.Context, out: Path, resume: bool, force: bool, deprecated_model: str | None,
          **options: Any) -> None:
    """Train a model by dithered SGD; keeps the best-validation model in OUT.

    Started by torchrun (several processes on one or more machines), the processes train one
    model with DistributedDataParallel: --batch-size is the global batch (divisible by the number
    of processes) and rank 0 alone reads and writes OUT (docs/training.md).
    """
    from .distributed import current_world
    from .progress import loss_text
    from .text.cli import is_text_run, train_command
    from .train import TrainingError
    from .train import train as run_training

    if is_text_run(options["architecture"], out, resume):
        return train_command(ctx, out, resume, force, options)
    options.pop("text_size"), options.pop("vocab_size")  # text models only
    world = current_world()
    try:
        cfg = world.from_main(lambda: _train_config(ctx, out, resume, force, deprecated_model, options))
        with RichReporter() as reporter:
            state = run_training(cfg, out, resume=resume, force=force, progress=reporter)
    except TrainingError as exc:
        raise click.ClickException(str(exc)) from None
    if world.main:
        reporter.console.print(f"done: {state.epoch} epochs, best valid loss "
                               f"{loss_text(state.best_valid, bool(state.log) and 'valid_bpp' in state.log[-1])} "
                               f"at epoch {state.best_epoch}; model in {out}")


def _train_config(ctx: click.Context, out: Path, resume: bool, force: bool, deprecated_model: str | None,
                  options: dict[str, Any]) -> Any:
    """The settings of ``latcomp train``: the command line's (a new run) or the checkpoint's (``--resume``),
    checked before any work (UsageError)."""
    from .train import default_config, read_checkpoint_config

    given = {name for name in options if ctx.get_parameter_source(name) in
             (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    if deprecated_model is not None:
        click.echo("latcomp: warning: `latcomp train --model` is deprecated; use --arch", err=True)
        if "architecture" in given and options["architecture"] != deprecated_model:
            raise click.UsageError("--model (deprecated) and --arch disagree")
        options["architecture"] = deprecated_model
        given.add("architecture")
    if resume and force:
        raise click.UsageError("--resume and --force exclude each other")
    options["data_dir"] = str(options["data_dir"]) if options["data_dir"] else None
    if resume:
        return _resumed_config(ctx, read_checkpoint_config(out), options, given)
    cfg = default_config(**{k: options[k] for k in given | {"architecture", "data_dir"}})
    try:
        check_hparams(cfg.architecture, cfg.hparams())  # e.g. a bad lattice spec, before any work
    except SchemaError as exc:
        raise click.UsageError(f"invalid settings: {exc}") from None
    return cfg


def _resumed_config(ctx: click.Context, saved: Any, options: dict[str, Any], given: set[str]) -> Any:
    """The checkpoint's settings ``saved``; options given on the command line must agree (UsageError naming
    every conflict), except the stopping rule (``latcomp.train.RESUMABLE``), which replaces the recorded
    values."""
    from dataclasses import replace

    from .train import RESUMABLE

    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params}
    conflicts = [f"{flags[name]} {options[name]} (the run has {getattr(saved, name)})" for name in sorted(given)
                 if name not in RESUMABLE and options[name] != getattr(saved, name)]
    if conflicts:
        raise click.UsageError(f"--resume continues the run with its recorded settings; conflicting options: "
                               f"{', '.join(conflicts)}")
    return replace(saved, **{name: options[name] for name in RESUMABLE if name in given})


# --------------------------------------------------------------------------- encode / decode
# These commands must not import torch (fast cold start): the codec runs the networks with numpy.

_MODEL_OPTION = click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None,
                             help="Model directory (default: the shipped model of the input's kind: MNIST digits, "
                                  "photos, text).")
#: A job shows a progress bar (on a terminal) once it has run this many seconds.
_PROGRESS_AFTER = 1.0


def _warn(message: str) -> None:
    """Print ``latcomp: warning: MESSAGE`` as one line on stderr (lossy conversions of inputs)."""
    click.echo(f"latcomp: warning: {' '.join(message.splitlines())}", err=True)


def _source_name(path: str) -> str:
    return "standard input" if path == "-" else path


def _read_container(infile: str) -> tuple[bytes, Any]:
    """The bytes of a container (a regular file of bounded size, or ``-``) and its verified header."""
    from .codec import read_header
    from .errors import FormatError
    from .fileio import read_input

    data = read_input(infile)
    try:
        return data, read_header(data)
    except FormatError as exc:
        raise FormatError(f"{_source_name(infile)}: {exc}") from None


def _run_with_progress(label: str, quiet: bool, work: Any) -> Any:
    """Call ``work(report)``; on a terminal, a progress bar appears once the job has run for
    :data:`_PROGRESS_AFTER` seconds (none for quicker jobs, none off a terminal or with --quiet).

    ``report(stage, done, total)`` moves it; work that never reports shows a pulsing bar and the time elapsed.
    """
    if quiet or not sys.stderr.isatty():
        return work(None)
    import threading

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True,
                   redirect_stdout=False, console=Console(stderr=True))
    task = bar.add_task(label, total=None)
    lock, shown, finished = threading.Lock(), [], []

    def show() -> None:
        with lock:
            if not finished:
                bar.start()
                shown.append(True)

    timer = threading.Timer(_PROGRESS_AFTER, show)
    timer.daemon = True
    timer.start()
    try:
        return work(lambda stage, done, total: bar.update(task, description=label if stage == label else
                                                          f"{label}: {stage}", completed=done, total=total))
    finally:
        with lock:
            finished.append(True)
            timer.cancel()
            if shown:
                bar.stop()


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(allow_dash=True, path_type=str))
@click.option("-o", "--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=str), required=True,
              help="Output container (.lat), or - for standard output.")
@_MODEL_OPTION
@click.option("-q", "--quality", type=click.IntRange(PHOTO_QUALITIES[0], PHOTO_QUALITIES[-1]),
              default=DEFAULT_PHOTO_QUALITY, show_default=True,
              help=f"Photos: quality level of the shipped photo models, {PHOTO_QUALITIES[0]} (smallest files) to "
                   f"{PHOTO_QUALITIES[-1]} (best images).")
@click.option("--lossless", is_flag=True,
              help="Also code every pixel exactly (binary images only); text: the exact text, byte for byte.")
@click.option("--resize", is_flag=True,
              help="Convert images of another size or mode to the model's input (each lossy step is a warning).")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=None, metavar="T",
              help="Binarize: intensity ≥ T (in (0, 1]) becomes 1, else 0.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=None,
              help="Dither seed (default: random per file); fixes the output bytes.")
@click.option("--effort", type=click.IntRange(min=0), default=0, show_default=True, metavar="K",
              help="Photos: refine each image's latent by K gradient steps before coding (slower, smaller files at "
                   "the same quality; needs torch; the file decodes as any other; docs/photos.md).")
@click.option("--force", is_flag=True, help="Overwrite OUT if it is an existing regular file.")
@click.option("--quiet", is_flag=True, help="Print nothing on success (warnings still are).")
def encode(inputs: tuple[str, ...], out: str, model: Path | None, quality: int, lossless: bool, resize: bool,
           threshold: float | None, seed: int | None, effort: int, force: bool, quiet: bool) -> None:
    """Compress images (files, directories, .npz/.npy or IDX arrays; - for standard input) or a text file into one
    .lat container.

    Without --model, each input goes by what it is, never by the other inputs: arrays
    (.npz, .npy, IDX) and binary 28×28 masks (two levels: black and white) use the MNIST
    digit model; every other image, of any size, RGB or grayscale (a gray 28×28 photo
    too), uses the shipped photo model of --quality. Digits and photos in one run are an
    error (one .lat holds one kind). A text file (a name ending in .txt: UTF-8 text, one
    at a time) uses the shipped text model; --lossless keeps it byte for byte. --model
    names any model directory.
    """
    from .codec import load_model, read_header
    from .container import relabeled
    from .fileio import atomic_write_bytes, check_not_an_input, check_output, signals_as_exceptions, write_stdout
    from .images import image_names, list_inputs, read_inputs
    from .modalities import of_model
    from .modelfile import DEFAULT_MODEL, DEFAULT_TEXT_MODEL

    with signals_as_exceptions():
        if out != "-":
            check_output(out, force)
            check_not_an_input(out, list_inputs(list(inputs), warn=lambda message: None))
        blobs = read_inputs(list(inputs), warn=_warn)
        if model is None and any(source.endswith(".txt") for source, _ in blobs):
            model = DEFAULT_TEXT_MODEL
        if model is None:
            model = _model_of_inputs(blobs, quality)
        loaded = load_model(model or DEFAULT_MODEL)
        if effort and of_model(loaded).name != "photo":
            raise click.UsageError(f"--effort applies to photos, not to a {of_model(loaded).name} model")
        names = () if of_model(loaded).name == "text" else image_names(list(inputs), blobs, _warn)
        if of_model(loaded).name == "text":
            from .text.cli import encode_file

            data = _run_with_progress("encode", quiet, lambda report: encode_file(blobs, loaded, lossless, seed))
        elif of_model(loaded).name == "digits":
            data = _encode_digits(list(inputs), blobs, loaded, lossless, resize, threshold, seed, quiet)
        else:
            data = _encode_photos(blobs, loaded, lossless, resize, threshold, seed, quiet, effort)
        data = relabeled(data, names=names) if names else data
        if out == "-":
            write_stdout(data)
        else:
            atomic_write_bytes(out, data, overwrite=force)
    if not quiet:
        header = read_header(data)
        items = f"{header.count} {'image' if header.image_pixels else 'line'}{'s' * (header.count != 1)}"
        rate = f", {8 * len(data) / header.image_pixels:.4f} bits/pixel" if header.image_pixels else ""
        click.echo(f"{'standard output' if out == '-' else out}: {items}, "
                   f"{header.mode}{' (pixels stored raw)' * header.stored}, {len(data)} bytes "
                   f"(header {header.header_bytes}, payload {header.payload_bytes}){rate}", err=True)


def _model_of_inputs(blobs: list[tuple[str, bytes]], quality: int) -> Path:
    """The model for inputs without --model, by what each one is (:func:`latcomp.images.image_kind`), never by
    its neighbours: arrays and binary masks of the digit size the MNIST model, other images the photo model."""
    from .digits.network import image_shape
    from .errors import InputError
    from .images import image_kind
    from .modelfile import DEFAULT_MODEL, read_config
    from .photo.codec import photo_model

    digit_shape = image_shape(read_config(DEFAULT_MODEL)["hparams"]["data_dim"])  # the config only, not the weights
    kinds = {source: image_kind(data, source, digit_shape) for source, data in blobs}
    if len(set(kinds.values())) > 1:
        digit, photo = (next(name for name, kind in kinds.items() if kind == wanted) for wanted in ("digit", "photo"))
        raise InputError(f"{digit} is a digit (an array or a binary 28×28 mask) but {photo} is a photo; one .lat "
                         f"holds one kind: encode them separately, or name one model for all with --model")
    return Path(DEFAULT_MODEL) if "digit" in kinds.values() else photo_model(quality)


def _encode_digits(inputs: list[str], blobs: list[tuple[str, bytes]], loaded: Any, lossless: bool, resize: bool,
                   threshold: float | None, seed: int | None, quiet: bool) -> bytes:
    """Fixed-size images (the MNIST model): read, binarize if asked, compress with a progress bar."""
    from .codec import compress
    from .images import binarize, load_inputs

    image_shape = loaded.net.image_shape
    images = load_inputs(inputs, image_shape, resize=resize, warn=_warn, blobs=blobs)
    if threshold is not None:
        images = binarize(images, threshold)
    return _run_with_progress("encode", quiet, lambda report: compress(images, loaded, lossless=lossless, seed=seed,
                                                                        progress=report))


def _encode_photos(blobs: list[tuple[str, bytes]], loaded: Any, lossless: bool, resize: bool,
                   threshold: float | None, seed: int | None, quiet: bool, effort: int = 0) -> bytes:
    """Photos of any size (a photo model): one image gives a single-image file, several a batch (gray and
    colour ones: the gray ones marked, :func:`latcomp.images.one_channel_count`)."""
    from .container import relabeled
    from .errors import InputError
    from .images import one_channel_count, read_photo
    from .photo.codec import compress

    if lossless or resize or threshold is not None:
        raise InputError("--lossless, --resize and --threshold apply to the MNIST digit model, not to photos "
                         "(to code an image as a digit anyway: --model models/mnist-lattice-vae)")
    def read_and_compress(report: Any) -> bytes:
        photos, gray = one_channel_count([read_photo(data, source, warn=_warn) for source, data in blobs])
        data = compress(photos[0] if len(photos) == 1 else photos, loaded, seed=seed, progress=report,
                        effort=effort)
        return relabeled(data, gray=gray) if gray else data

    return _run_with_progress("encode", quiet, read_and_compress)


@cli.command()
@click.argument("infile", metavar="IN", type=click.Path(allow_dash=True, path_type=str))
@click.option("-o", "--out", type=click.Path(allow_dash=True, path_type=str), required=True,
              help="Output: a .png (one image), an .npz, a directory (a name ending in / or without an "
                   "extension) or - (standard output, one image as PNG).")
@_MODEL_OPTION
@click.option("--force", is_flag=True, help="Replace OUT if it is an existing regular file or directory of images.")
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def decode(infile: str, out: str, model: Path | None, force: bool, quiet: bool) -> None:
    """Decompress a .lat container (- for standard input) to a PNG, an .npz or a directory of PNGs."""
    from .errors import InputError
    from .fileio import check_not_an_input, signals_as_exceptions
    from .images import output_kind
    from .modalities import of_header

    name = _source_name(infile)
    with signals_as_exceptions():
        if out != "-":
            check_not_an_input(out, [infile])
        data, header = _read_container(infile)
        try:
            modality = of_header(header).name
            target = "text" if modality == "text" else output_kind(out, header.count, modality)
        except InputError as exc:
            raise InputError(f"{name}: {exc}") from None
        try:
            modality = of_header(header).name
            handlers = {"digits": _decode_digits, "photo": _decode_photos, "text": _decode_text}
            if modality not in handlers:
                raise InputError(f"latcomp decode does not write {modality} files yet (use latcomp.{modality}.codec)")
            handlers[modality](data, header, target, out, model, force, quiet)
        except CodecError as exc:
            raise type(exc)(f"{name}: {exc}") from None
    if not quiet:
        kind = "line" if of_header(header).name == "text" else "image"
        click.echo(f"{'standard output' if out == '-' else out}: {header.count} {kind}{'s' * (header.count != 1)} "
                   f"({header.mode}) from {name}", err=True)


def _check_target(target: str, out: str, force: bool, header: Any) -> Path:
    """Refuse an output before any decoding work (see :func:`latcomp.fileio.check_output`; a directory:
    :func:`latcomp.images.check_png_dir` with the file's image names)."""
    from .fileio import check_output
    from .images import check_png_dir

    path = Path(out)  # without a trailing slash: a link to a directory is not followed
    if target == "dir":
        check_png_dir(path, force, header.names)
    elif target != "stdout":
        check_output(path, force)
    return path


def _decode_digits(data: bytes, header: Any, target: str, out: str, model: Path | None, force: bool,
                   quiet: bool) -> None:
    """Fixed-size images: decode (8-bit pixels chunk by chunk) and write the PNG, .npz or directory."""
    from .codec import decompress, to_uint8
    from .images import write_npz, write_png, write_png_dir
    from .modelfile import DEFAULT_MODEL

    path = _check_target(target, out, force, header)
    # 8-bit pixels chunk by chunk: lossless 0/1, lossy the 8-bit means (no float64 copy of the images)
    images = _run_with_progress("decode", quiet, lambda report: decompress(
        data, model or DEFAULT_MODEL, progress=report, dtype="uint8"))
    if target == "npz":  # the layout given to encode; lossless: 0/1 pixels, lossy: 8-bit means
        write_npz(path, images, force=force)
        return
    h, w, c = header.image_shape
    pixels = (to_uint8(images) if header.lossless else images).reshape(
        (header.count, h, w) if c == 1 else (header.count, h, w, c))
    if target in ("png", "stdout"):
        write_png(out if target == "stdout" else path, pixels[0], force=force)
    else:
        write_png_dir(path, pixels, force=force, names=header.names)


def _decode_text(data: bytes, header: Any, target: str, out: str, model: Path | None, force: bool,
                 quiet: bool) -> None:
    """Text (format version 4): the text, with the text model given by --model (a bar with the time elapsed)."""
    from .text.cli import decode_file

    _run_with_progress("decode", quiet, lambda report: decode_file(data, out, model, force))


def _decode_photos(data: bytes, header: Any, target: str, out: str, model: Path | None, force: bool,
                   quiet: bool) -> None:
    """Photos (format version 3): decode with the model the file names and write PNGs of their own sizes."""
    from .errors import InputError
    from .images import write_png, write_png_dir
    from .photo.codec import decompress

    if target == "npz":
        raise InputError("photos of their own sizes are written as PNG files (a .png, a directory or -), "
                         "not as one .npz array")
    path = _check_target(target, out, force, header)

    def decode_and_write(report: Any) -> None:
        images = decompress(data, model, progress=report)
        images = [images] if header.layout == "single" else images
        if target in ("png", "stdout"):
            write_png(out if target == "stdout" else path, images[0], force=force)
        else:
            write_png_dir(path, images, force=force, names=header.names)

    _run_with_progress("decode", quiet, decode_and_write)


@cli.command()
@click.argument("infile", metavar="FILE", type=click.Path(allow_dash=True, path_type=str))
def info(infile: str) -> None:
    """Print the header of a .lat container (after checking its checksums; needs no model). A file of a shipped
    model names it (and a photo model's quality level)."""
    from .modalities import of_header
    from .runtime.model import shipped_name

    data, h = _read_container(infile)
    channels = h.channels
    rows = [("file", _source_name(infile)), ("format version", h.version),
            ("model id", h.model_id.hex() + shipped_name(h.model_id)), ("lattice", h.lattice or "z (rectangular)"),
            ("mode", "lossless, pixels stored raw" if h.stored else h.mode)]
    if h.fields is None:
        rows += [("images", f"{h.count} (layout {h.layout})"),
                 ("image size", f"{_sizes(h)}, {channels} channel{'s' * (channels != 1)}")]
        rows += [("names", _first(h.names))] if h.names else []
        rows += [("gray images", _first([name for name, gray in zip(h.names or range(1, h.count + 1), h.gray,
                                                                    strict=True) if gray]))] if h.gray else []
    else:  # version 4: items of a modality of its own, not images
        rows += [("modality", of_header(h).name), ("items", f"{h.count} (layout {h.layout})")]
    rows += [("dither seed", h.seed),
             ("size", f"{len(data)} bytes (header {h.header_bytes}, payload {h.payload_bytes})")]
    if h.image_pixels:
        rows.append(("bits per pixel", f"{8 * len(data) / h.image_pixels:.4f}"))
    for key, value in rows:
        click.echo(f"{key + ':':16}{value}")


def _sizes(h: Any) -> str:
    """Image sizes as height×width: the one of a fixed-size file, or each image's (the first few)."""
    if not h.sizes:
        return f"{h.image_shape[0]}×{h.image_shape[1]}"
    return _first([f"{height}×{width}" for height, width in h.sizes])


def _first(items: Any, shown: int = 4) -> str:
    """The first ``shown`` of ``items``, comma-separated, and how many more there are."""
    return ", ".join(map(str, items[:shown])) + (f", … ({len(items) - shown} more)" if len(items) > shown else "")


# --------------------------------------------------------------------------- bench


#: Options of ``latcomp bench`` for one mode only (the other refuses them).
_PHOTO_ONLY = ("peers", "peer_codecs", "extra_curves", "repeats", "cold_runs")
_MNIST_ONLY = ("split", "is_samples", "dithers", "no_bitstream", "defensive")
#: Options of ``latcomp bench`` for text models only; the digit options and ``--images`` do not apply to them.
_TEXT_ONLY = ("sentences",)


@cli.command()
@click.argument("model_dirs", metavar="[MODEL_DIR]...", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option("--photo", is_flag=True,
              help="Photo models on the Kodak images against JPEG, WebP, AVIF and JPEG XL: RD curves (real "
                   "files), BD-rates, cold-start decode time. MODEL_DIR... defaults to the shipped photo models "
                   f"q{PHOTO_QUALITIES[0]} … q{PHOTO_QUALITIES[-1]} that exist.")
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True,
              help="Dataset split to evaluate on (each model's own dataset).")
@click.option("--is-samples", type=click.IntRange(min=0), default=1000, show_default=True, metavar="K",
              help="Importance samples per image for the NLL (0: skip, report the −ELBO bound). The time "
                   "grows about linearly with K: K = 1000 takes about 7 minutes per model for the 10,000 test "
                   "digits on 2 CPU cores, K = 100 about a minute.")
@click.option("--dithers", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Dithers per image for the rate/distortion/−ELBO estimates.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the dataset files (default: $LATCOMP_DATA, else download to the cache). "
                   "--photo: the Kodak folder or a data root holding kodak/ (default: $LATCOMP_DATA, else "
                   "../shared/data).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results (and the command) as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results table as Markdown (--photo: the whole report).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="Write PNG figures (rate vs NLL, rate vs distortion, validation curves) into this directory; "
                   "--photo: the RD plot (PSNR and MS-SSIM against bpp) as this PNG file; text models: the "
                   "Figure 4 plot (rate per word against word NLL) as this PNG file.")
@click.option("--no-bitstream", is_flag=True, help="Do not code the split; report the lattice VAE's rate estimate.")
@click.option("--images", type=click.IntRange(min=1), default=None, metavar="N",
              help="Use N evenly spaced images of the split (default: all; the test split is sorted by class); "
                   "--photo: the first N Kodak images (quick runs).")
@click.option("--defensive", is_flag=True,
              help="Also estimate the lattice VAE's NLL with the defensive proposal (½ cell + ½ Gaussian per "
                   "active block), which unlike the cell proposal converges to −log p; doubles the IS time.")
@click.option("--peers", default="run", show_default=True, metavar="run|FILE|none",
              help="--photo: measure the peer codecs in this run (about 25 minutes for all of them on the 24 "
                   "images, 2 cores), take their curves from an earlier report (e.g. "
                   "docs/results/photo-peers.json; the report says so), or leave them out.")
@click.option("--peer-codecs", default=None, metavar="LIST",
              help="--photo: only these peers, comma-separated: jpeg, jpeg-opt, webp, avif, jxl.")
@click.option("--extra-curve", "extra_curves", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="--photo: add the curves of another report (a photo bench or photo-peers JSON, or the "
                   "CompressAI peer's; its peer codecs that this report has already are left out); repeatable.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, metavar="N",
              help="--photo: timed runs per image and setting (the median is reported).")
@click.option("--cold-runs", type=click.IntRange(min=0), default=3, show_default=True, metavar="N",
              help="--photo: fresh `python -m latcomp decode` processes per model for the cold-start time "
                   "(median; 0: skip).")
@click.option("--sentences", type=click.IntRange(min=1), default=None, metavar="N",
              help="Text models: decode N evenly spaced validation sentences for the lossy exact-match and word "
                   "error rates [default: 500].")
@click.pass_context
def bench(ctx: click.Context, model_dirs: tuple[Path, ...], photo: bool, split: str, is_samples: int, dithers: int,
          data_dir: Path | None, json_path: Path | None, markdown_path: Path | None, plot_path: Path | None,
          no_bitstream: bool, defensive: bool, images: int | None, sentences: int | None,
          **photo_options: Any) -> None:
    """Rate (bits/image, from real bitstreams where possible), distortion, −ELBO and IS NLL of models.

    With --photo: photo models against the classical codecs on Kodak (tables on stdout; JSON,
    Markdown report and RD plot on request).

    Text models (the paper's Figure 4 on sentences, docs/text.md): word NLL and rate per word on the
    validation sentences (real files where the model writes them), lossy decoding quality and speed,
    and the NLL difference of every pair of methods at equal rate.

    The table on stdout has fewer columns when the terminal is too narrow for all of
    them; --json and --markdown always have every column.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .measure import text_bench
    from .measure.bench import run_bench, write_bench, write_plots

    given = {p.name for p in ctx.command.params
             if ctx.get_parameter_source(p.name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)}
    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params}
    wrong = sorted(flags[n] for n in given & set(_MNIST_ONLY if photo else _PHOTO_ONLY))
    if wrong:
        raise click.UsageError(f"{', '.join(wrong)} {'do not apply' if photo else 'apply only'} with --photo")
    if not photo and not model_dirs:
        raise click.UsageError("Missing argument 'MODEL_DIR...'.")
    text = not photo and text_bench.text_models(model_dirs)
    wrong = sorted(flags[n] for n in given & set((*_MNIST_ONLY, "images") if text else _TEXT_ONLY))
    if wrong:
        raise click.UsageError(f"{', '.join(wrong)} {'do not apply to' if text else 'apply only to'} text models")
    if not photo and not text and plot_path is not None and plot_path.is_file():
        raise click.BadParameter(f"Directory '{plot_path}' is a file.", param_hint="'--plot'")
    for path in (json_path, markdown_path, plot_path if photo or text else None):
        if path is not None and not path.absolute().parent.is_dir():
            raise FileNotFoundError(f"{path.parent}: output directory does not exist")
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        if photo:
            result = _run_photo_bench(model_dirs, data_dir, images, report, **photo_options)
        elif text:
            res = text_bench.run_text_bench(model_dirs, data_dir, sentences or text_bench.DEFAULT_SENTENCES, report)
        else:
            res = run_bench(list(model_dirs), split=split, is_samples=is_samples, dithers=dithers,
                            data_dir=str(data_dir) if data_dir else None, progress=report,
                            bitstream=not no_bitstream, defensive=defensive, images=images)
    if photo:
        from .measure.photo_bench import write_photo_report

        for name, why in result.meta["skipped"].items():
            _warn(f"peer {name} skipped: {why}")
        _print_photo_bench(Console(), result)
        for path in write_photo_report(result, _bench_command(), json_path, markdown_path, plot_path):
            console.print(f"wrote {path}")
        return
    if text:
        _print_tables(Console(), text_bench.terminal_tables(res))
        for path in text_bench.write_text_bench(res, _bench_command(), json_path, markdown_path, plot_path):
            console.print(f"wrote {path}")
        return
    print_bench_table(Console(), res)
    for path in write_bench(res, _bench_command(), json_path, markdown_path):
        console.print(f"wrote {path}")
    if plot_path is not None:
        for path in write_plots(res, list(model_dirs), plot_path):
            console.print(f"wrote {path}")


def _bench_command() -> str:
    """The command line of this ``latcomp bench`` run, for the reports."""
    return shlex.join(["latcomp", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else "latcomp bench"


def _run_photo_bench(model_dirs: tuple[Path, ...], data_dir: Path | None, images: int | None, report: Any,
                     peers: str, peer_codecs: str | None, extra_curves: tuple[Path, ...], repeats: int,
                     cold_runs: int) -> Any:
    """Measure for ``latcomp bench --photo`` (:func:`latcomp.measure.photo_bench.run_photo_bench`; ``report``: the
    progress callback), after checking every input: peer list, report files, models, the data."""
    import importlib.util

    from .measure import photo_bench
    from .measure.kodak import load_kodak
    from .measure.peers import codec_names

    try:
        names = codec_names(peer_codecs) if peer_codecs else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--peer-codecs'") from None
    if names and peers == "none":
        raise click.UsageError("--peer-codecs chooses among the peers; --peers none leaves them out")
    for path in [*extra_curves, *([] if peers in ("run", "none") else [Path(peers)])]:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such report file")
    if importlib.util.find_spec("bjontegaard") is None:
        raise click.ClickException("BD-rates need the bjontegaard package: pip install 'latcomp[bench]'")
    models = list(model_dirs) or photo_bench.default_models()
    if not models:
        raise click.UsageError("no shipped photo models (models/photo-hyper2-q*) here; name MODEL_DIR...")
    for directory in models:  # before reading the images
        photo_bench.model_info(directory)
    kodak, data = load_kodak(data_dir, images)
    if data["not_kodak"]:
        _warn(f"{', '.join(data['not_kodak'])} in {data['folder']} are not the Kodak originals (their pixel "
              "checksums differ); the report says so")
    return photo_bench.run_photo_bench(models, kodak, data, peers, names, extra_curves, repeats, cold_runs,
                                       progress=report)


def _print_photo_bench(console: Any, result: Any) -> None:
    """The latcomp points and the BD-rates of a photo bench as rich tables (80 columns wide)."""
    from .measure.photo_bench import bd_rows, point_rows

    data = result.meta["data"]
    tables = [(f"latcomp on {data['images']} Kodak images (PSNR-RGB, MS-SSIM in dB; seconds per image; "
               "cold: a fresh decode process)",
               ("curve", "model (λ)", "bpp", "PSNR", "MS-SSIM", "enc", "dec", "cold"),
               point_rows(result)),
              ("BD-rate of curve against curve (negative: fewer bits at equal quality; PSNR-RGB and "
               "MS-SSIM dB, cubic and Akima interpolation)",
               ("curve", "against", "PSNR\ncubic", "PSNR\nAkima", "MS-SSIM\ncubic", "MS-SSIM\nAkima"),
               bd_rows(result))]
    _print_tables(console, tables)


#: Columns of the bench tables on stdout that hold names (left-aligned; the numbers are right-aligned).
_NAME_COLUMNS = ("curve", "model (λ)", "against", "model", "method", "source")


def _print_tables(console: Any, tables: Any) -> None:
    """Print (title, columns, rows of strings) tables with rich: numbers on one line, names wrapped if need be."""
    from rich import box
    from rich.table import Table

    for title, columns, rows in tables:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
        for column in columns:
            name = column in _NAME_COLUMNS
            table.add_column(column, justify="left" if name else "right", no_wrap=not name)  # names may wrap
        for row in rows:
            table.add_row(*row)
        console.print(table)


def print_bench_table(console: Any, res: dict[str, Any]) -> None:
    """Print the full bench table if it fits ``console`` (a rich Console), else the compact one."""
    table = _bench_table(res, compact=False)
    if console.measure(table, options=console.options.update_width(1 << 16)).maximum > console.width:
        table = _bench_table(res, compact=True)
    console.print(table)


def _bench_table(res: dict[str, Any], compact: bool) -> Any:
    """The rich table of bench results: every column, or the compact layout for narrow terminals."""
    from rich.table import Table

    from .measure.bench import COMPACT_CAPTION, COMPACT_COLUMNS, TABLE_COLUMNS, compact_table_rows, table_rows

    table = Table(title=f"latcomp bench ({res['split']} split, K = {res['is_samples']})",
                  caption=COMPACT_CAPTION if compact else None)
    for column in COMPACT_COLUMNS if compact else TABLE_COLUMNS:
        table.add_column(column, justify="left" if column in ("model", "architecture", "source") else "right",
                         overflow="fold")
    for row in compact_table_rows(res) if compact else table_rows(res):
        table.add_row(*row)
    return table


def os_error_message(exc: OSError) -> str:
    """``<path>: <reason>`` for an operating-system error; the text itself for one raised with a message."""
    if exc.strerror is None:
        return str(exc)
    paths = [os.fsdecode(p) if isinstance(p, bytes) else str(p) for p in (exc.filename, exc.filename2)
             if p is not None]
    return f"{' -> '.join(paths)}: {exc.strerror}" if paths else exc.strerror


def _fail(message: str, status: int = 1) -> NoReturn:
    """Print ``latcomp: error: MESSAGE`` as one line (line breaks in paths are shown as spaces) and exit."""
    click.echo(f"latcomp: error: {' '.join(message.splitlines())}", err=True)
    sys.exit(status)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the click group, turning user errors into one line.

    User errors are click's usage errors, the library's own exceptions (:data:`USER_ERRORS`),
    operating-system errors (no space, read-only file system, name too long, permission
    denied, …), running out of memory, and torch missing for a command that needs it.
    Every other exception is a bug and propagates with its traceback. In a torchrun run, a
    process whose peer failed (:class:`latcomp.distributed.PeerFailed`) exits 1 silently: the
    peer prints the line.
    """
    try:
        cli.main(args=argv, prog_name="latcomp", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("latcomp: interrupted", err=True)
        sys.exit(130)
    except PeerFailed:  # another process of a torchrun run failed and printed why
        sys.exit(1)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except USER_ERRORS as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(os_error_message(exc))
    except MemoryError:
        _fail("out of memory (try fewer images or a smaller batch at a time)")
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL_MODULES:
            raise
        _fail(f"this command needs {exc.name}, which is not installed: pip install "
              f"'latcomp[{OPTIONAL_MODULES[exc.name]}]' (encode and decode work without it)")
