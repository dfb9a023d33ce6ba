"""The ``latcomp`` command line: parses, shows progress, calls the library.

Every command is a thin wrapper: ``latcomp train`` is :func:`latcomp.train.train`.
Errors a user can cause (bad arguments, missing data, unreadable models) are
reported as one line on stderr with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from .data import DataError
from .errors import CodecError
from .modelfile import ModelFileError

#: Exceptions that are the user's input being wrong, reported without a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (DataError, ModelFileError, FileExistsError,
                                                 FileNotFoundError, ValueError, CodecError,
                                                 PermissionError, IsADirectoryError, NotADirectoryError)


class RichReporter:
    """Training progress: a live bar with running loss/rate/distortion, one line per epoch."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[metrics]}"), TimeRemainingColumn(),
                                 console=self.console, transient=True)
        self.task: Any = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def batch(self, epoch: int, step: int, steps: int, metrics: dict[str, float]) -> None:
        text = (f"loss {metrics['loss']:.2f}  rate {metrics['rate_bits']:.2f} bits  "
                f"distortion {metrics['distortion']:.2f}")
        if self.task is None:
            self.task = self.progress.add_task("train", total=steps, epoch=epoch, metrics=text)
        self.progress.update(self.task, completed=step, total=steps, epoch=epoch, metrics=text)

    def epoch(self, r: dict[str, Any]) -> None:
        mark = "[green]*best*[/green]" if r["best"] else ""
        self.console.print(
            f"epoch {r['epoch']:4d}  train {r['train_loss']:.3f}  valid {r['valid_loss']:.3f} nats  "
            f"rate {r['valid_rate_bits']:.2f} bits  distortion {r['valid_distortion']:.2f}  "
            f"{r['seconds']:.1f}s {mark}")


#: sorted(latcomp.registry.MODELS), kept here so that importing the CLI does not import torch (tested).
ARCHITECTURES = ("gaussian", "gaussian-lattice", "lattice-vae", "st-scalar", "st-vector")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="latcomp")
def cli() -> None:
    """latcomp: lattice-coded neural compression (dithered lattice VAEs, real bitstreams)."""


@cli.command()
@click.option("--dataset", type=click.Choice(["binarized-mnist", "dynamic-mnist"]), default="binarized-mnist",
              show_default=True, help="Static binarized MNIST (the paper's) or seeded dynamic binarization.")
@click.option("--model", "architecture", type=click.Choice(ARCHITECTURES), default="lattice-vae",
              show_default=True, help="Model architecture: the lattice VAE or a baseline (issue 4).")
@click.option("--levels", type=click.IntRange(min=2), default=4, show_default=True,
              help="Words M per quantizer of the straight-through baselines (st-scalar, st-vector).")
@click.option("--lattice", default="z", show_default=True, metavar="SPEC",
              help="Lattice of the lattice VAE's latent: z (rectangular), a2, d4, e8, bw16, leech, or blocks "
                   "such as e8*2 or leech+e8*2 (NAME tiles the latent; NAME*COUNT gives counts).")
@click.option("--lam", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Weight λ of the rate term (Eq. 3); 1 gives the ELBO.")
@click.option("--latent", type=click.IntRange(min=1), default=40, show_default=True, help="Latent dimension m.")
@click.option("--batch-size", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-4, show_default=True,
              help="Adam learning rate.")
@click.option("--max-epochs", type=click.IntRange(min=1), default=None, help="Stop after this many epochs.")
@click.option("--patience", type=click.IntRange(min=1), default=50, show_default=True,
              help="Stop after this many epochs without a better validation loss.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the dataset files (default: $LATCOMP_DATA, else download to the cache).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output model directory.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
def train(out: Path, resume: bool, data_dir: Path | None, **options: Any) -> None:
    """Train a model by dithered SGD; keeps the best-validation model in OUT."""
    from .train import TrainConfig
    from .train import train as run_training

    from .lattices import parse_spec

    cfg = TrainConfig(data_dir=str(data_dir) if data_dir else None, **options)
    if cfg.architecture == "lattice-vae":
        parse_spec(cfg.lattice, cfg.latent)  # a bad spec is a one-line error before any work
    with RichReporter() as reporter:
        state = run_training(cfg, out, resume=resume, reporter=reporter)
    reporter.console.print(f"done: {state.epoch} epochs, best valid loss {state.best_valid:.3f} nats "
                           f"at epoch {state.best_epoch}; model in {out}")


# --------------------------------------------------------------------------- encode / decode
# These commands must not import torch (fast cold start): the codec runs the networks with numpy.

_MODEL_OPTION = click.option("--model", type=click.Path(file_okay=False, path_type=Path), default=None,
                             help="Model directory (default: the shipped MNIST model).")
#: Show a progress bar from this many images on.
_PROGRESS_FROM = 8192


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to overwrite")
    if not path.absolute().parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: output directory does not exist")


def _run_with_progress(label: str, count: int, quiet: bool, work: Any) -> Any:
    """Call ``work(progress)``, with a rich progress bar for large batches."""
    if quiet or count < _PROGRESS_FROM:
        return work(None)
    from rich.console import Console
    from rich.progress import Progress

    with Progress(transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label}: {stage}", completed=done, total=total)

        return work(report)


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output container (.lat).")
@_MODEL_OPTION
@click.option("--lossless", is_flag=True, help="Also code every pixel exactly (binary images only).")
@click.option("--resize", is_flag=True, help="Convert images of another size or mode to the model's input.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=None, metavar="T",
              help="Binarize: intensity ≥ T (in (0, 1]) becomes 1, else 0.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=None,
              help="Dither seed (default: random per file); fixes the output bytes.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def encode(inputs: tuple[Path, ...], out: Path, model: Path | None, lossless: bool, resize: bool,
           threshold: float | None, seed: int | None, force: bool, quiet: bool) -> None:
    """Compress images (files, directories, .npz or IDX arrays) into one .lat container."""
    from .codec import compress, load_model, read_header
    from .fileio import atomic_write_bytes
    from .images import binarize, load_inputs
    from .modelfile import DEFAULT_MODEL

    _refuse_existing(out, force)
    loaded = load_model(model or DEFAULT_MODEL)
    images = load_inputs(list(inputs), loaded.image_shape, resize=resize)
    if threshold is not None:
        images = binarize(images, threshold)
    count = 1 if images.shape in (loaded.image_shape, loaded.image_shape[:2]) else len(images)
    data = _run_with_progress("encode", count, quiet,
                              lambda report: compress(images, loaded, lossless=lossless, seed=seed,
                                                      progress=report))
    atomic_write_bytes(out, data)
    if not quiet:
        header = read_header(data)
        pixels = header.count * header.image_shape[0] * header.image_shape[1] * header.image_shape[2]
        click.echo(f"{out}: {header.count} image{'s' * (header.count != 1)}, {header.mode}, {len(data)} bytes "
                   f"(header {header.header_bytes}, payload {header.payload_bytes}), "
                   f"{8 * len(data) / pixels:.4f} bits/pixel", err=True)


@cli.command()
@click.argument("infile", metavar="IN", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output: a .png for one image, a directory of PNGs or an .npz for a batch.")
@_MODEL_OPTION
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def decode(infile: Path, out: Path, model: Path | None, force: bool, quiet: bool) -> None:
    """Decompress a .lat container to a PNG (one image), a directory of PNGs or an .npz."""
    from .codec import decompress, read_header, to_uint8
    from .errors import FormatError
    from .images import output_kind, write_npz, write_png, write_png_dir
    from .modelfile import DEFAULT_MODEL

    if infile.is_dir():
        raise FormatError(f"{infile} is a directory, not a latcomp file")
    if not infile.exists():
        raise FileNotFoundError(f"{infile}: no such file")
    data = infile.read_bytes()
    try:
        header = read_header(data)
    except FormatError as exc:
        raise FormatError(f"{infile}: {exc}") from None
    try:
        target = output_kind(out, header.count, header.layout)
    except CodecError as exc:
        raise type(exc)(f"{infile}: {exc}") from None
    if target != "dir":
        if out.is_dir():
            raise IsADirectoryError(f"{out} is a directory")
        _refuse_existing(out, force)
    else:
        if out.exists() and not force:
            raise FileExistsError(f"{out} exists; pass --force to write into it")
        _refuse_existing(out, True)
    try:
        images = _run_with_progress("decode", header.count, quiet, lambda report: decompress(
            data, model or DEFAULT_MODEL, progress=report))
    except CodecError as exc:
        raise type(exc)(f"{infile}: {exc}") from None
    h, w, c = header.image_shape
    pixels = to_uint8(images).reshape((header.count, h, w) if c == 1 else (header.count, h, w, c))
    if target == "png":
        write_png(out, pixels[0])
    elif target == "npz":  # the layout given to encode; lossless: 0/1 pixels, lossy: 8-bit means
        write_npz(out, images if header.lossless else to_uint8(images))
    else:
        write_png_dir(out, pixels, force=force)
    if not quiet:
        click.echo(f"{out}: {header.count} image{'s' * (header.count != 1)} ({header.mode}) from {infile}",
                   err=True)


# --------------------------------------------------------------------------- bench


@cli.command()
@click.argument("model_dirs", metavar="MODEL_DIR...", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["test", "valid"]), default="test", show_default=True,
              help="Dataset split to evaluate on (each model's own dataset).")
@click.option("--is-samples", type=click.IntRange(min=0), default=1000, show_default=True, metavar="K",
              help="Importance samples per image for the NLL (0: skip, report the −ELBO bound).")
@click.option("--dithers", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Dithers per image for the rate/distortion/−ELBO estimates.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with the dataset files (default: $LATCOMP_DATA, else download to the cache).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results (and the command) as JSON.")
@click.option("--markdown", "markdown_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the results table as Markdown.")
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write PNG figures (rate vs NLL, rate vs distortion, validation curves) into this directory.")
@click.option("--no-bitstream", is_flag=True, help="Do not code the split; report the lattice VAE's rate estimate.")
@click.option("--defensive", is_flag=True,
              help="Also estimate the lattice VAE's NLL with the defensive proposal (½ cell + ½ Gaussian per "
                   "active block), which unlike the cell proposal converges to −log p; doubles the IS time.")
def bench(model_dirs: tuple[Path, ...], split: str, is_samples: int, dithers: int, data_dir: Path | None,
          json_path: Path | None, markdown_path: Path | None, plot_dir: Path | None, no_bitstream: bool,
          defensive: bool) -> None:
    """Rate (bits/image, from real bitstreams where possible), distortion, −ELBO and IS NLL of models."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from .bench import TABLE_COLUMNS, run_bench, table_rows, write_bench, write_plots

    for path in (json_path, markdown_path):
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

        res = run_bench(list(model_dirs), split=split, is_samples=is_samples, dithers=dithers,
                        data_dir=str(data_dir) if data_dir else None, progress=report, bitstream=not no_bitstream,
                        defensive=defensive)
    table = Table(title=f"latcomp bench ({split} split, K = {is_samples})")
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column in ("model", "architecture", "source") else "right")
    for row in table_rows(res):
        table.add_row(*row)
    Console().print(table)
    command = shlex.join(["latcomp", *sys.argv[1:]]) if sys.argv[1:2] == ["bench"] else "latcomp bench"
    for path in write_bench(res, command, json_path, markdown_path):
        console.print(f"wrote {path}")
    if plot_dir is not None:
        for path in write_plots(res, list(model_dirs), plot_dir):
            console.print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the click group, turning user errors into one line."""
    try:
        cli.main(args=argv, prog_name="latcomp", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("latcomp: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"latcomp: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except USER_ERRORS as exc:
        click.echo(f"latcomp: error: {exc}", err=True)
        sys.exit(1)
