"""Run a set of trainings described in a JSON file, resumably, a few at a time.

``python -m benchmarks.sweep SPEC.json [--jobs 2]``. The spec is::

    {"defaults": {"max_epochs": 20, "data_dir": "../shared/data"},
     "runs": [{"out": "models/figure4/lattice-lam1", "arch": "lattice-vae", "lam": 1.0}, ...]}

Every run is ``latcomp train`` with the run's options over the defaults (keys are
the ``train`` options without dashes, ``_`` for ``-``; ``model``, the old name of
``arch``, is accepted). A run whose directory has a checkpoint is continued with
``--resume``, so an interrupted sweep goes on where it stopped and finished runs
are skipped; a new run starts in an empty directory (or one holding only the
sweep's ``train-stderr.log``). A directory with other files but no checkpoint is
left alone: ``latcomp train`` refuses it and the sweep reports why.
Each job runs with ``OMP_NUM_THREADS=1`` so that ``--jobs`` processes share the cores;
its output goes to ``OUT/train-stderr.log``, whose last line the summary shows for a failed run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

#: Each run's output, in its directory.
LOG = "train-stderr.log"
#: Spec keys that are not the option's name: ``model`` is the old name of ``--arch``.
RENAMED = {"model": "arch"}


def train_command(run: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The ``latcomp train`` command line of one run (see the module docstring for --resume and --force)."""
    options = {**defaults, **run}
    out = Path(options["out"])
    args = [sys.executable, "-m", "latcomp", "train"]
    if (out / "checkpoint.safetensors").exists():
        args.append("--resume")
    elif out.is_dir() and {p.name for p in out.iterdir()} == {LOG}:
        args.append("--force")  # only the sweep's own log is there: nothing to lose
    for key, value in options.items():
        if value is not None:
            args += [f"--{RENAMED.get(key, key).replace('_', '-')}", str(value)]
    return args


def run_sweep(spec_path: str | os.PathLike, jobs: int = 2) -> list[int]:
    """Run every training of the spec (``jobs`` at a time); returns their exit codes."""
    spec = json.loads(Path(spec_path).read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(run: dict[str, Any]) -> int:
        Path(run["out"]).mkdir(parents=True, exist_ok=True)
        with open(Path(run["out"]) / LOG, "ab") as log:
            return subprocess.run(train_command(run, spec.get("defaults", {})), env=env,
                                  stdout=log, stderr=log).returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, spec["runs"]))


def failure_reason(out: str | os.PathLike, code: int) -> str:
    """Why a run failed: its exit status and the last line of its log."""
    status = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
    try:
        lines = (Path(out) / LOG).read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    last = next((line.strip() for line in reversed(lines) if line.strip()), "(empty log)")
    return f"{out}: {status}: {last}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="sweep JSON file")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at a time")
    args = parser.parse_args(argv)
    runs = json.loads(Path(args.spec).read_text())["runs"]
    codes = run_sweep(args.spec, args.jobs)
    failed = [(run["out"], code) for run, code in zip(runs, codes, strict=True) if code]
    print(f"{len(codes) - len(failed)} of {len(codes)} runs finished" + (f"; {len(failed)} failed:" if failed else ""))
    for out, code in failed:
        print(f"  {failure_reason(out, code)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
