"""Run a set of trainings described in a JSON file, resumably, a few at a time.

``python -m benchmarks.sweep SPEC.json [--jobs 2]``. The spec is::

    {"defaults": {"max_epochs": 20, "data_dir": "../shared/data"},
     "runs": [{"out": "models/figure4/lattice-lam1", "model": "lattice-vae", "lam": 1.0}, ...]}

Every run is ``latcomp train --resume`` with the run's options over the defaults
(keys are the ``train`` options without dashes, ``_`` for ``-``), so an
interrupted sweep continues where it stopped and finished runs are skipped.
Each job runs with ``OMP_NUM_THREADS=1`` so that ``--jobs`` processes share the cores.
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


def train_command(run: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """The ``latcomp train`` command line of one run."""
    options = {**defaults, **run}
    args = [sys.executable, "-m", "latcomp", "train", "--resume"]
    for key, value in options.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def run_sweep(spec_path: str | os.PathLike, jobs: int = 2) -> list[int]:
    """Run every training of the spec (``jobs`` at a time); returns their exit codes."""
    spec = json.loads(Path(spec_path).read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def one(run: dict[str, Any]) -> int:
        Path(run["out"]).mkdir(parents=True, exist_ok=True)
        with open(Path(run["out"]) / "train-stderr.log", "ab") as log:
            return subprocess.run(train_command(run, spec.get("defaults", {})), env=env,
                                  stdout=log, stderr=log).returncode

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, spec["runs"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="sweep JSON file")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at a time")
    args = parser.parse_args(argv)
    codes = run_sweep(args.spec, args.jobs)
    failed = [i for i, c in enumerate(codes) if c]
    print(f"{len(codes) - len(failed)} of {len(codes)} runs finished" + (f"; failed: {failed}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
